//! Replay of a text-encoder bundle (`t5-*`, ../shared/parity/FORMAT.md): the
//! recorded `ids`/`mask` `[1, L]` (int64) through the umT5 encoder → `context [1, L, dim]`.
use crate::replay::{ReplayOptions, Tensors};
use anyhow::{bail, Result};
use graph::models::t5::T5Encoder;
use runtime::Gpu;
use std::path::Path;
use std::sync::Arc;
use weights::{Checkpoint, HostTensor, T5Config};

/// Whether `dir` holds a text-encoder bundle.
pub fn is_bundle(dir: &Path) -> bool {
    dir.join("t5.safetensors").exists()
}

/// `[1, L]` integer ids or mask as u32.
fn row(dir: &Path, name: &str, t: &HostTensor) -> Result<Vec<u32>> {
    if t.dtype.is_float() || t.shape.len() != 2 || t.shape[0] != 1 {
        bail!("{}: inputs {name} must be an integer [1, L] tensor, got {:?} {}", dir.display(), t.shape, t.dtype);
    }
    t.to_f32().into_iter().map(|v| if v >= 0.0 { Ok(v as u32) } else { bail!("{}: {name} holds {v}", dir.display()) }).collect()
}

pub fn replay(gpu: Arc<Gpu>, dir: &Path, opts: ReplayOptions) -> Result<Tensors> {
    let cfg = T5Config::load(&dir.join("config.json"))?;
    let ck = Checkpoint::open(dir.join("t5.safetensors"))?;
    let inputs = Checkpoint::open(dir.join("inputs.safetensors"))?;
    let ids = row(dir, "ids", inputs.get("ids")?)?;
    let mask = row(dir, "mask", inputs.get("mask")?)?;
    if ids.len() != mask.len() {
        bail!("{}: {} ids but {} mask values", dir.display(), ids.len(), mask.len());
    }
    let mut enc = T5Encoder::load(gpu, ck, &cfg, ids.len(), opts.wdtype)?;
    let context = enc.encode(&ids, &mask)?;
    Ok(Tensors::from([("context".to_string(), (vec![1, ids.len(), cfg.dim], context))]))
}
