//! What a checkpoint holds, for `videossm inspect`: counts, dtypes, sizes and which
//! of the project's models it is, told apart by keys no other model has.
use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::tensor::DType;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dit,
    DitMemory,
    Vae,
    T5,
    Unknown,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Dit => "dit",
            Kind::DitMemory => "dit+memory",
            Kind::Vae => "vae",
            Kind::T5 => "t5",
            Kind::Unknown => "unknown",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub path: PathBuf,
    pub tensors: usize,
    /// Tensor count per dtype.
    pub dtypes: BTreeMap<DType, usize>,
    pub bytes: u64,
    pub parameters: u64,
    pub kind: Kind,
    /// Where the model's keys start, for nested checkpoints (`generator_ema.model.`); empty if at the top.
    pub prefix: String,
}

/// The model kind of a flat state dict.
pub fn detect(ck: &Checkpoint) -> Kind {
    detect_keys(|k| ck.contains(k))
}

fn detect_keys(has: impl Fn(&str) -> bool) -> Kind {
    if has("patch_embedding.weight") && has("blocks.0.self_attn.q.weight") {
        if has("blocks.0.self_attn.memory.A_log") {
            Kind::DitMemory
        } else {
            Kind::Dit
        }
    } else if has("decoder.conv1.weight") {
        Kind::Vae
    } else if has("token_embedding.weight") && has("blocks.0.attn.q.weight") {
        Kind::T5
    } else {
        Kind::Unknown
    }
}

/// Where the model sits in a nested checkpoint: at the top, or under the prefix of a
/// Self-Forcing `.pt` (EMA weights first, as they are the ones to generate with).
pub fn locate(ck: &Checkpoint) -> (Kind, String) {
    for prefix in ["", "generator_ema.model.", "generator_ema.", "generator.model.", "generator.", "model."] {
        let kind = detect_keys(|k| ck.contains(&format!("{prefix}{k}")));
        if kind != Kind::Unknown {
            return (kind, prefix.to_string());
        }
    }
    (Kind::Unknown, String::new())
}

pub fn inspect(path: impl AsRef<Path>) -> Result<Summary> {
    let ck = Checkpoint::open(path)?;
    let (kind, prefix) = locate(&ck);
    let mut dtypes = BTreeMap::new();
    for t in ck.tensors.values() {
        *dtypes.entry(t.dtype).or_insert(0) += 1;
    }
    Ok(Summary {
        tensors: ck.tensors.len(),
        dtypes,
        bytes: ck.tensors.values().map(|t| t.data.len() as u64).sum(),
        parameters: ck.tensors.values().map(|t| t.numel() as u64).sum(),
        kind,
        prefix,
        path: ck.path,
    })
}
