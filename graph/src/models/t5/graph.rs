//! One encoder layer for `n` tokens, all of them valid, as seven pieces, one per
//! linear: each holds its linear's weights with the cheap ops around it (the norm
//! before it, the attention before `o`, GELU, the gating product, the residual), so
//! the device holds one linear at a time. The values between pieces, a few tokens'
//! rows, pass through the host. Padding never enters: T5's attention masks padding
//! keys and its position bias depends on distances only, so a prompt's rows are the
//! same with or without it.
use super::weights::LayerParams;
use super::EPS;
use crate::builder::Builder;
use crate::error::Result;
use crate::executor::{CompileOptions, Compiled};
use crate::ir::TensorId;
use crate::models::linear::Linear;
use crate::ops::{Epilogue, Norm};
use runtime::{DType, Gpu, Tensor};
use weights::T5Config;

/// A value a layer's pieces pass on through the host, `[tokens, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Value {
    /// The residual stream: the layer's input, then after attention, then its output.
    X,
    Q,
    K,
    V,
    /// `GELU(gate.0(norm2(x)))`
    Gate,
    /// `fc1(norm2(x)) ⊙ gate`, what `fc2` reads.
    Hidden,
}

impl Value {
    pub const COUNT: usize = 6;

    pub fn name(self) -> &'static str {
        ["x", "q", "k", "v", "gate", "hidden"][self as usize]
    }

    fn width(self, cfg: &T5Config) -> usize {
        match self {
            Value::X => cfg.dim,
            Value::Q | Value::K | Value::V => cfg.dim_attn,
            Value::Gate | Value::Hidden => cfg.dim_ffn,
        }
    }
}

/// A piece of a layer, named after its linear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Piece {
    Q,
    K,
    V,
    O,
    Gate,
    Fc1,
    Fc2,
}

impl Piece {
    /// A layer's pieces in the order they run.
    pub const LAYER: [Piece; 7] = [Piece::Q, Piece::K, Piece::V, Piece::O, Piece::Gate, Piece::Fc1, Piece::Fc2];

    /// Its linear's name under `blocks.N.` and its `(out, in)` features.
    pub fn linear(self, cfg: &T5Config) -> (&'static str, usize, usize) {
        let (d, a, f) = (cfg.dim, cfg.dim_attn, cfg.dim_ffn);
        match self {
            Piece::Q => ("attn.q", a, d),
            Piece::K => ("attn.k", a, d),
            Piece::V => ("attn.v", a, d),
            Piece::O => ("attn.o", d, a),
            Piece::Gate => ("ffn.gate.0", f, d),
            Piece::Fc1 => ("ffn.fc1", f, d),
            Piece::Fc2 => ("ffn.fc2", d, f),
        }
    }

    /// The values it reads (the residual stream first), and the one it makes.
    pub fn io(self) -> (&'static [Value], Value) {
        match self {
            Piece::Q => (&[Value::X], Value::Q),
            Piece::K => (&[Value::X], Value::K),
            Piece::V => (&[Value::X], Value::V),
            Piece::O => (&[Value::X, Value::Q, Value::K, Value::V], Value::X),
            Piece::Gate => (&[Value::X], Value::Gate),
            Piece::Fc1 => (&[Value::X, Value::Gate], Value::Hidden),
            Piece::Fc2 => (&[Value::X, Value::Hidden], Value::X),
        }
    }
}

fn rms(g: &mut Builder, name: &str, x: TensorId, weight: &Tensor) -> Result<TensorId> {
    let w = g.param(&format!("{name}.weight"), weight);
    g.norm(name, x, Norm::Rms { weight: w }, EPS)
}

/// `piece` of layer `n` with its linear `lin`, for `tokens` tokens: inputs named after
/// the values it reads, output `y` (after the last layer's `fc2`, finally normed).
pub(super) fn build(gpu: &Gpu, cfg: &T5Config, n: usize, piece: Piece, lin: &Linear, p: &LayerParams, tokens: usize) -> Result<Compiled> {
    let mut g = Builder::new(gpu.caps);
    let ins: Vec<TensorId> = piece.io().0.iter().map(|&v| g.input(v.name(), &[tokens, v.width(cfg)], DType::F32)).collect();
    let x = ins[0];
    let b = format!("blocks.{n}");
    let name = format!("{b}.{}", piece.linear(cfg).0);
    let y = match piece {
        Piece::Q | Piece::K | Piece::V => {
            let h = rms(&mut g, &format!("{b}.norm1"), x, &p.norm1)?;
            lin.forward(&mut g, &name, h, Epilogue::None)?
        }
        Piece::O => {
            // Self-attention: T5 does not scale the scores by 1/√d.
            let (keys, bias) = (g.param(&format!("{b}.ranges"), &p.keys), g.param(&format!("{b}.pos_bias"), &p.bias));
            let a = g.attention_biased(&format!("{b}.attn"), ins[1], ins[2], ins[3], keys, Some(bias), cfg.num_heads, 1.0, lin.dtype())?;
            lin.forward(&mut g, &name, a, Epilogue::Residual(x))?
        }
        // Gated-GELU feed-forward (tanh GELU on the gate branch).
        Piece::Gate => {
            let h = rms(&mut g, &format!("{b}.norm2"), x, &p.norm2)?;
            lin.forward(&mut g, &name, h, Epilogue::Gelu)?
        }
        Piece::Fc1 => {
            let h = rms(&mut g, &format!("{b}.norm2"), x, &p.norm2)?;
            let up = lin.forward(&mut g, &name, h, Epilogue::None)?;
            g.mul(&format!("{b}.ffn.mul"), up, ins[1])?
        }
        Piece::Fc2 => {
            let y = lin.forward(&mut g, &name, ins[1], Epilogue::Residual(x))?;
            match &p.last {
                Some(w) => rms(&mut g, "norm", y, w)?,
                None => y,
            }
        }
    };
    g.output(y, "y");
    g.compile(gpu, CompileOptions::default())
}
