//! The checkpoint validated into [`HostWeights`] (its tensors moved, not copied), and
//! one layer at a time uploaded into a [`Block`]: matmul weights in the device dtype,
//! norms f32.
use super::weights::{Attn, Block, Ffn, HostBlock, HostWeights, Layer, RelativeEmbedding};
use crate::error::{GraphError, Result};
use crate::models::linear::Linear;
use runtime::{DType, Gpu, Tensor};
use weights::{Checkpoint, HostTensor, T5Config};

/// Checks `ck` against `cfg` (shapes, dtypes, no tensor left over, finite values) and
/// keeps its tensors by layer.
pub fn load(cfg: &T5Config, mut ck: Checkpoint) -> Result<HostWeights> {
    ck.validate(&cfg.expected_tensors())?;
    ck.check_finite()?;
    let mut take = |key: String| -> Result<HostTensor> {
        ck.tensors.remove(&key).ok_or_else(|| GraphError::Session(format!("{key}: validated but not in the checkpoint")))
    };
    let relative = |t: HostTensor| RelativeEmbedding { embedding: t.to_f32() };
    let pos_embedding = if cfg.shared_pos { Some(relative(take("pos_embedding.embedding.weight".into())?)) } else { None };
    let mut blocks = Vec::with_capacity(cfg.num_layers);
    for n in 0..cfg.num_layers {
        let mut t = |name: &str| take(format!("blocks.{n}.{name}.weight"));
        let block = Layer {
            norm1: t("norm1")?.to_f32(),
            attn: Attn { q: t("attn.q")?, k: t("attn.k")?, v: t("attn.v")?, o: t("attn.o")? },
            norm2: t("norm2")?.to_f32(),
            ffn: Ffn { gate: t("ffn.gate.0")?, fc1: t("ffn.fc1")?, fc2: t("ffn.fc2")? },
        };
        let table = if cfg.shared_pos { None } else { Some(relative(t("pos_embedding.embedding")?)) };
        blocks.push((block, table));
    }
    let token_embedding = take("token_embedding.weight".into())?;
    let norm = take("norm.weight".into())?.to_f32();
    if let Some(key) = ck.tensors.keys().next() {
        return Err(GraphError::Session(format!("{key}: validated, yet no layer reads it")));
    }
    Ok(HostWeights { token_embedding, pos_embedding, blocks, norm })
}

/// Uploads layer `n` (`b`) with its matmul weights in `wdtype`.
pub fn upload(gpu: &Gpu, cfg: &T5Config, n: usize, b: &HostBlock, wdtype: DType) -> Result<Block> {
    let (d, a, f) = (cfg.dim, cfg.dim_attn, cfg.dim_ffn);
    let key = |name: &str| format!("blocks.{n}.{name}.weight");
    let linear = |name: &str, t: &HostTensor, out: usize, inp: usize| Linear::upload(gpu, &key(name), out, inp, wdtype, &t.to_f32(), None);
    let norm = |name: &str, w: &[f32]| -> Result<Tensor> { Ok(gpu.upload(&key(name), &[d], DType::F32, w)?) };
    Ok(Layer {
        norm1: norm("norm1", &b.norm1)?,
        attn: Attn {
            q: linear("attn.q", &b.attn.q, a, d)?,
            k: linear("attn.k", &b.attn.k, a, d)?,
            v: linear("attn.v", &b.attn.v, a, d)?,
            o: linear("attn.o", &b.attn.o, d, a)?,
        },
        norm2: norm("norm2", &b.norm2)?,
        ffn: Ffn {
            gate: linear("ffn.gate.0", &b.ffn.gate, f, d)?,
            fc1: linear("ffn.fc1", &b.ffn.fc1, f, d)?,
            fc2: linear("ffn.fc2", &b.ffn.fc2, d, f)?,
        },
    })
}

/// The embedding rows of `ids` `[n, dim]`, as f32.
pub fn embed(w: &HostWeights, cfg: &T5Config, ids: &[u32]) -> Vec<f32> {
    let t = &w.token_embedding;
    let row = cfg.dim * t.dtype.size();
    ids.iter()
        .flat_map(|&id| {
            let bytes = &t.data[id as usize * row..(id as usize + 1) * row];
            HostTensor { shape: vec![cfg.dim], dtype: t.dtype, data: bytes.to_vec() }.to_f32()
        })
        .collect()
}
