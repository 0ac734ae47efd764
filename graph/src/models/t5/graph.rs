//! The encoder graph for `text_len` tokens: inputs `ids [L]` (u32) and `ranges
//! [1, 2]` (the valid keys `[0, n)`), output `context [L, dim]`.
use super::weights::T5Weights;
use super::{relative_bias, EPS};
use crate::builder::Builder;
use crate::error::{GraphError, Result};
use crate::executor::{CompileOptions, Compiled};
use crate::ir::TensorId;
use crate::models::linear::Linear;
use crate::ops::{Epilogue, Norm};
use runtime::{DType, Gpu};
use weights::T5Config;

fn linear(g: &mut Builder, name: &str, x: TensorId, l: &Linear, epi: Epilogue) -> Result<TensorId> {
    l.forward(g, name, x, epi)
}

fn rms(g: &mut Builder, name: &str, x: TensorId, weight: &runtime::Tensor) -> Result<TensorId> {
    let w = g.param(&format!("{name}.weight"), weight);
    g.norm(name, x, Norm::Rms { weight: w }, EPS)
}

pub(super) fn build(gpu: &Gpu, w: &T5Weights, cfg: &T5Config, text_len: usize, opts: CompileOptions) -> Result<Compiled> {
    let mut g = Builder::new(gpu.caps);
    let heads = cfg.num_heads;
    let ids = g.input("ids", &[text_len], DType::U32);
    let ranges = g.input("ranges", &[1, 2], DType::U32);
    let slices: Vec<(TensorId, usize)> =
        w.token_embedding.iter().map(|(t, first)| (g.param(&format!("token_embedding.weight[{first}..]"), t), *first)).collect();
    let mut x = g.gather("token_embedding", ids, &slices, cfg.vocab)?;
    for (n, b) in w.blocks.iter().enumerate() {
        let p = format!("blocks.{n}");
        let table = w.pos_table(n).ok_or_else(|| GraphError::Session(format!("{p}: no relative-position table")))?;
        let bias = relative_bias(&table.embedding, cfg.num_buckets, heads, text_len);
        let bias = gpu.upload(&format!("{p}.pos_bias"), &[heads, bias.len() / heads], DType::F32, &bias)?;
        let bias = g.param(&format!("{p}.pos_bias"), &bias);

        // Self-attention: T5 does not scale the scores by 1/√d.
        let h = rms(&mut g, &format!("{p}.norm1"), x, &b.norm1)?;
        let q = linear(&mut g, &format!("{p}.attn.q"), h, &b.attn.q, Epilogue::None)?;
        let k = linear(&mut g, &format!("{p}.attn.k"), h, &b.attn.k, Epilogue::None)?;
        let v = linear(&mut g, &format!("{p}.attn.v"), h, &b.attn.v, Epilogue::None)?;
        let a = g.attention_biased(&format!("{p}.attn"), q, k, v, ranges, Some(bias), heads, 1.0, b.attn.k.dtype())?;
        x = linear(&mut g, &format!("{p}.attn.o"), a, &b.attn.o, Epilogue::Residual(x))?;

        // Gated-GELU feed-forward (tanh GELU on the gate branch).
        let h = rms(&mut g, &format!("{p}.norm2"), x, &b.norm2)?;
        let gate = linear(&mut g, &format!("{p}.ffn.gate.0"), h, &b.ffn.gate, Epilogue::Gelu)?;
        let up = linear(&mut g, &format!("{p}.ffn.fc1"), h, &b.ffn.fc1, Epilogue::None)?;
        let m = g.mul(&format!("{p}.ffn.mul"), up, gate)?;
        x = linear(&mut g, &format!("{p}.ffn.fc2"), m, &b.ffn.fc2, Epilogue::Residual(x))?;
    }
    let y = rms(&mut g, "norm", x, &w.norm)?;
    g.output(y, "context");
    g.compile(gpu, opts)
}
