//! The checkpoint validated into [`HostWeights`] (it may stay in its file: see
//! [`Checkpoint::open_lazy`]), a layer's small tensors and one linear at a time
//! uploaded (matmul weights in the device dtype, the rest f32), and a prompt's token
//! embeddings.
use super::graph::Piece;
use super::relative_bias;
use super::weights::{HostWeights, LayerParams, RelativeEmbedding};
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

/// Reads the linear of `piece` of layer `n` from the checkpoint and uploads it in `wdtype`.
pub(super) fn upload_linear(gpu: &Gpu, cfg: &T5Config, w: &HostWeights, n: usize, piece: Piece, wdtype: DType) -> Result<Linear> {
    let (name, out, inp) = piece.linear(cfg);
    let key = format!("blocks.{n}.{name}.weight");
    Linear::upload_host(gpu, &key, out, inp, wdtype, &*w.ck.read(&key)?, None)
}

/// Uploads the small tensors of layer `n` for a prompt of `tokens` tokens.
pub(super) fn upload_params(gpu: &Gpu, cfg: &T5Config, w: &HostWeights, n: usize, tokens: usize) -> Result<LayerParams> {
    let f32s = |key: &str, values: &[f32]| -> Result<Tensor> { Ok(gpu.upload(key, &[values.len()], DType::F32, values)?) };
    let norm = |name: &str| -> Result<Tensor> {
        let key = format!("blocks.{n}.{name}.weight");
        f32s(&key, &w.ck.read(&key)?.to_f32())
    };
    let table = &w.pos_tables[n.min(w.pos_tables.len() - 1)];
    let bias = relative_bias(&table.embedding, cfg.num_buckets, cfg.num_heads, tokens);
    let span = bias.len() / cfg.num_heads;
    Ok(LayerParams {
        norm1: norm("norm1")?,
        norm2: norm("norm2")?,
        bias: gpu.upload(&format!("blocks.{n}.pos_bias"), &[cfg.num_heads, span], DType::F32, &bias)?,
        keys: gpu.upload(&format!("blocks.{n}.ranges"), &[1, 2], DType::U32, &[0.0, tokens as f32])?,
        last: if n + 1 == cfg.num_layers { Some(f32s("norm.weight", &w.norm)?) } else { None },
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
