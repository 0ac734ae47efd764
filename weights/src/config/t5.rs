//! The umT5 text encoder's settings and state dict (TEXT_VAE.md C.1).
use super::{read_json, Checker};
use crate::error::Result;
use crate::validate::Expected;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct T5Config {
    pub vocab: usize,
    pub dim: usize,
    pub dim_attn: usize,
    pub dim_ffn: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    pub num_buckets: usize,
    /// One relative-position table for all layers (T5) or one per layer (umT5: false).
    pub shared_pos: bool,
    #[serde(default)]
    pub dropout: f64,
}

impl T5Config {
    /// Wan2.1's text encoder, `models_t5_umt5-xxl-enc-bf16.pth` (TEXT_VAE.md C.1),
    /// which ships without a config file.
    pub fn umt5_xxl() -> T5Config {
        T5Config {
            vocab: 256384,
            dim: 4096,
            dim_attn: 4096,
            dim_ffn: 10240,
            num_heads: 64,
            num_layers: 24,
            num_buckets: 32,
            shared_pos: false,
            dropout: 0.0,
        }
    }

    pub fn load(path: &Path) -> Result<T5Config> {
        let c: T5Config = read_json(path)?;
        c.validate(path)?;
        Ok(c)
    }

    pub fn validate(&self, path: &Path) -> Result<()> {
        let c = Checker { path };
        for (v, f) in [
            (self.vocab, "vocab"),
            (self.dim, "dim"),
            (self.dim_attn, "dim_attn"),
            (self.dim_ffn, "dim_ffn"),
            (self.num_heads, "num_heads"),
            (self.num_buckets, "num_buckets"),
        ] {
            c.size(v, f)?;
        }
        c.ensure((1..=1024).contains(&self.num_layers), "num_layers", || format!("{} is outside 1..=1024", self.num_layers))?;
        c.ensure(self.dim_attn.is_multiple_of(self.num_heads), "num_heads", || {
            format!("dim_attn {} is not divisible by num_heads {}", self.dim_attn, self.num_heads)
        })?;
        // Bidirectional buckets: half for each direction, half of those exact distances.
        c.ensure(self.num_buckets >= 4 && self.num_buckets.is_multiple_of(2), "num_buckets", || {
            format!("{} must be even and at least 4", self.num_buckets)
        })
    }

    pub fn expected_tensors(&self) -> Expected {
        let (d, a, f) = (self.dim, self.dim_attn, self.dim_ffn);
        let mut e = Expected::default();
        e.float("token_embedding.weight", &[self.vocab, d]);
        if self.shared_pos {
            e.float("pos_embedding.embedding.weight", &[self.num_buckets, self.num_heads]);
        }
        for n in 0..self.num_layers {
            let b = format!("blocks.{n}");
            e.float(format!("{b}.norm1.weight"), &[d]);
            for p in ["q", "k", "v"] {
                e.float(format!("{b}.attn.{p}.weight"), &[a, d]);
            }
            e.float(format!("{b}.attn.o.weight"), &[d, a]);
            e.float(format!("{b}.norm2.weight"), &[d]);
            e.float(format!("{b}.ffn.gate.0.weight"), &[f, d]);
            e.float(format!("{b}.ffn.fc1.weight"), &[f, d]);
            e.float(format!("{b}.ffn.fc2.weight"), &[d, f]);
            if !self.shared_pos {
                e.float(format!("{b}.pos_embedding.embedding.weight"), &[self.num_buckets, self.num_heads]);
            }
        }
        e.float("norm.weight", &[d]);
        e
    }
}
