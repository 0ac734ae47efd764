//! The checkpoint validated into [`HostWeights`] (it may stay in its file: see
//! [`Checkpoint::open_lazy`]), one layer at a time uploaded into a [`Block`] (matmul
//! weights in the device dtype, norms f32), and a prompt's token embeddings.
use super::weights::{Attn, Block, Ffn, HostWeights, RelativeEmbedding};
use crate::error::{GraphError, Result};
use crate::models::linear::Linear;
use runtime::{DType, Gpu, Tensor};
use weights::{Checkpoint, HostTensor, T5Config};

/// Checks `ck` against `cfg` (shapes, dtypes, no tensor left over; finite values of
/// what it holds) and reads the small tensors: position tables and the final norm.
pub fn load(cfg: &T5Config, ck: Checkpoint) -> Result<HostWeights> {
    ck.validate(&cfg.expected_tensors())?;
    ck.check_finite()?;
    let f32s = |key: &str| -> Result<Vec<f32>> { Ok(ck.read(key)?.to_f32()) };
    let table = |key: &str| -> Result<RelativeEmbedding> { Ok(RelativeEmbedding { embedding: f32s(key)? }) };
    let pos_tables = if cfg.shared_pos {
        vec![table("pos_embedding.embedding.weight")?]
    } else {
        (0..cfg.num_layers).map(|n| table(&format!("blocks.{n}.pos_embedding.embedding.weight"))).collect::<Result<_>>()?
    };
    let norm = f32s("norm.weight")?;
    Ok(HostWeights { ck, pos_tables, norm })
}

/// Reads layer `n` from the checkpoint and uploads it with its matmul weights in `wdtype`.
pub fn upload(gpu: &Gpu, cfg: &T5Config, w: &HostWeights, n: usize, wdtype: DType) -> Result<Block> {
    let (d, a, f) = (cfg.dim, cfg.dim_attn, cfg.dim_ffn);
    let key = |name: &str| format!("blocks.{n}.{name}.weight");
    let linear = |name: &str, out: usize, inp: usize| -> Result<Linear> {
        Linear::upload(gpu, &key(name), out, inp, wdtype, &w.ck.read(&key(name))?.to_f32(), None)
    };
    let norm = |name: &str| -> Result<Tensor> { Ok(gpu.upload(&key(name), &[d], DType::F32, &w.ck.read(&key(name))?.to_f32())?) };
    Ok(Block {
        norm1: norm("norm1")?,
        attn: Attn { q: linear("attn.q", a, d)?, k: linear("attn.k", a, d)?, v: linear("attn.v", a, d)?, o: linear("attn.o", d, a)? },
        norm2: norm("norm2")?,
        ffn: Ffn { gate: linear("ffn.gate.0", f, d)?, fc1: linear("ffn.fc1", f, d)?, fc2: linear("ffn.fc2", d, f)? },
    })
}

/// The embedding rows of `ids` (each `< vocab`) `[n, dim]`, as f32.
pub fn embed(w: &HostWeights, cfg: &T5Config, ids: &[u32]) -> Result<Vec<f32>> {
    let key = "token_embedding.weight";
    let t = w.ck.get(key)?;
    let row = cfg.dim * t.dtype.size();
    let mut out = Vec::with_capacity(ids.len() * cfg.dim);
    for &id in ids {
        let bytes = w.ck.read_bytes(key, id as u64 * row as u64, row)?;
        let values = HostTensor { shape: vec![cfg.dim], dtype: t.dtype, data: bytes.into_owned() }.to_f32();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(GraphError::input("ids", format!("{}: {key} row {id} holds NaN/Inf", w.ck.path.display())));
        }
        out.extend(values);
    }
    Ok(out)
}
