//! One encoder layer's graph for `n` tokens, all of them valid: input `x [n, dim]`,
//! output `y [n, dim]`; the last layer also applies the final norm. Padding never
//! enters: T5's attention masks padding keys and its position bias depends on
//! distances only, so a prompt's rows are the same with or without it.
use super::weights::Block;
use super::{relative_bias, EPS};
use crate::builder::Builder;
use crate::error::Result;
use crate::executor::{CompileOptions, Compiled};
use crate::ir::TensorId;
use crate::models::linear::Linear;
use crate::ops::{Epilogue, Norm};
use runtime::{DType, Gpu, Tensor};
use weights::T5Config;

fn linear(g: &mut Builder, name: &str, x: TensorId, l: &Linear, epi: Epilogue) -> Result<TensorId> {
    l.forward(g, name, x, epi)
}

fn rms(g: &mut Builder, name: &str, x: TensorId, weight: &Tensor) -> Result<TensorId> {
    let w = g.param(&format!("{name}.weight"), weight);
    g.norm(name, x, Norm::Rms { weight: w }, EPS)
}

/// Layer `n` (`b`, with its relative-position `table`) for `tokens` tokens; `norm`: the final norm's gain, after the last layer.
#[allow(clippy::too_many_arguments)]
pub(super) fn build(
    gpu: &Gpu,
    cfg: &T5Config,
    n: usize,
    b: &Block,
    table: &[f32],
    tokens: usize,
    norm: Option<&Tensor>,
) -> Result<Compiled> {
    let mut g = Builder::new(gpu.caps);
    let heads = cfg.num_heads;
    let x = g.input("x", &[tokens, cfg.dim], DType::F32);
    let ranges = g.input("ranges", &[1, 2], DType::U32);
    let p = format!("blocks.{n}");
    let bias = relative_bias(table, cfg.num_buckets, heads, tokens);
    let bias = gpu.upload(&format!("{p}.pos_bias"), &[heads, bias.len() / heads], DType::F32, &bias)?;
    let bias = g.param(&format!("{p}.pos_bias"), &bias);

    // Self-attention: T5 does not scale the scores by 1/√d.
    let h = rms(&mut g, &format!("{p}.norm1"), x, &b.norm1)?;
    let q = linear(&mut g, &format!("{p}.attn.q"), h, &b.attn.q, Epilogue::None)?;
    let k = linear(&mut g, &format!("{p}.attn.k"), h, &b.attn.k, Epilogue::None)?;
    let v = linear(&mut g, &format!("{p}.attn.v"), h, &b.attn.v, Epilogue::None)?;
    let a = g.attention_biased(&format!("{p}.attn"), q, k, v, ranges, Some(bias), heads, 1.0, b.attn.k.dtype())?;
    let x = linear(&mut g, &format!("{p}.attn.o"), a, &b.attn.o, Epilogue::Residual(x))?;

    // Gated-GELU feed-forward (tanh GELU on the gate branch).
    let h = rms(&mut g, &format!("{p}.norm2"), x, &b.norm2)?;
    let gate = linear(&mut g, &format!("{p}.ffn.gate.0"), h, &b.ffn.gate, Epilogue::Gelu)?;
    let up = linear(&mut g, &format!("{p}.ffn.fc1"), h, &b.ffn.fc1, Epilogue::None)?;
    let m = g.mul(&format!("{p}.ffn.mul"), up, gate)?;
    let mut y = linear(&mut g, &format!("{p}.ffn.fc2"), m, &b.ffn.fc2, Epilogue::Residual(x))?;
    if let Some(w) = norm {
        y = rms(&mut g, "norm", y, w)?;
    }
    g.output(y, "y");
    g.compile(gpu, CompileOptions::default())
}
