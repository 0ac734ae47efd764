//! The generator's architecture: Wan's `config.json` plus the cache settings.
use super::{read_json, Checker};
use crate::error::Result;
use crate::validate::Expected;
use serde::Deserialize;
use std::path::Path;

fn neg1() -> i64 {
    -1
}

fn no_window() -> [i64; 2] {
    [-1, -1]
}

fn t2v() -> String {
    "t2v".into()
}

fn yes() -> bool {
    true
}

fn gated_linear() -> String {
    "gated_linear".into()
}

/// Which global memory a checkpoint's `memory.*` keys are (MEMORY.md B).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryType {
    /// B.3, our earlier form: `"gated_linear"`, the default for configs without the field.
    GatedLinear,
    /// B.6, the paper's: gated delta rule, RMSNorm + Swish output gate, router.
    GatedDelta,
}

impl MemoryType {
    pub const ALL: [MemoryType; 2] = [MemoryType::GatedLinear, MemoryType::GatedDelta];

    pub fn name(self) -> &'static str {
        match self {
            MemoryType::GatedLinear => "gated_linear",
            MemoryType::GatedDelta => "gated_delta",
        }
    }

    /// The form `config.json` (or `--memory-type`) calls `name`.
    pub fn from_name(name: &str) -> Option<MemoryType> {
        MemoryType::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl std::fmt::Display for MemoryType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// WanModel's defaults, which Wan2.1's published config.json leaves out.
fn patch() -> [usize; 3] {
    [1, 2, 2]
}

fn umt5_dim() -> usize {
    4096
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct DitConfig {
    #[serde(default = "t2v")]
    pub model_type: String,
    #[serde(default = "patch")]
    pub patch_size: [usize; 3],
    pub text_len: usize,
    pub in_dim: usize,
    pub dim: usize,
    pub ffn_dim: usize,
    pub freq_dim: usize,
    #[serde(default = "umt5_dim")]
    pub text_dim: usize,
    pub out_dim: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    /// Wan's sliding attention window over tokens; the causal generator has none.
    #[serde(default = "no_window")]
    pub window_size: [i64; 2],
    #[serde(default = "yes")]
    pub qk_norm: bool,
    #[serde(default = "yes")]
    pub cross_attn_norm: bool,
    pub eps: f64,
    /// Latent frames the self-attention cache holds, sinks included; −1 = unbounded.
    #[serde(default = "neg1")]
    pub local_attn_size: i64,
    /// Leading latent frames never evicted.
    #[serde(default)]
    pub sink_size: usize,
    /// `"gated_linear"` (B.3) or `"gated_delta"` (B.6); kept as text so a bad value
    /// is a field error naming the choices (see [`DitConfig::memory`]).
    #[serde(default = "gated_linear")]
    pub memory_type: String,
    /// B.6 router's T: latent frames until the memory is fully open (the paper's
    /// total context length). Required by `gated_delta`.
    #[serde(default)]
    pub memory_horizon: Option<usize>,
}

impl DitConfig {
    /// Wan2.1-T2V-1.3B (MODEL.md A) as a VideoSSM generator: a cache of 9 latent frames of
    /// which 3 are sinks, and the paper's memory (B.6) opening over 12 latent frames as in
    /// the `dit-memory-gd` bundle. What `bench --full` runs, with random weights.
    pub fn wan2_1_t2v_1_3b() -> DitConfig {
        DitConfig {
            model_type: t2v(),
            patch_size: patch(),
            text_len: 512,
            in_dim: 16,
            dim: 1536,
            ffn_dim: 8960,
            freq_dim: 256,
            text_dim: umt5_dim(),
            out_dim: 16,
            num_heads: 12,
            num_layers: 30,
            window_size: no_window(),
            qk_norm: true,
            cross_attn_norm: true,
            eps: 1e-6,
            local_attn_size: 9,
            sink_size: 3,
            memory_type: MemoryType::GatedDelta.name().into(),
            memory_horizon: Some(12),
        }
    }

    pub fn load(path: &Path) -> Result<DitConfig> {
        let c: DitConfig = read_json(path)?;
        c.validate(path)?;
        Ok(c)
    }

    /// Checks every field; `path` only names the source in errors.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let c = Checker { path };
        c.ensure(self.model_type == "t2v", "model_type", || format!("{:?} is not supported (only \"t2v\")", self.model_type))?;
        c.ensure(self.patch_size == [1, 2, 2], "patch_size", || {
            format!("{:?} is not supported (only [1, 2, 2], as every released Wan model)", self.patch_size)
        })?;
        for (v, f) in [
            (self.text_len, "text_len"),
            (self.in_dim, "in_dim"),
            (self.dim, "dim"),
            (self.ffn_dim, "ffn_dim"),
            (self.freq_dim, "freq_dim"),
            (self.text_dim, "text_dim"),
            (self.out_dim, "out_dim"),
            (self.num_heads, "num_heads"),
        ] {
            c.size(v, f)?;
        }
        c.ensure((1..=1024).contains(&self.num_layers), "num_layers", || format!("{} is outside 1..=1024", self.num_layers))?;
        c.ensure(self.dim.is_multiple_of(self.num_heads), "num_heads", || {
            format!("dim {} is not divisible by num_heads {}", self.dim, self.num_heads)
        })?;
        let d = self.head_dim();
        // MODEL.md A.3: d/2 rotation pairs split in three groups, each at least one pair.
        c.ensure(d.is_multiple_of(2) && d >= 6, "num_heads", || {
            format!("head dim {d} = dim / num_heads must be even and at least 6 for the 3-axis RoPE")
        })?;
        c.ensure(self.freq_dim.is_multiple_of(2), "freq_dim", || format!("{} must be even (cos and sin halves)", self.freq_dim))?;
        c.ensure(self.window_size == [-1, -1], "window_size", || {
            format!("{:?} is not supported (only [-1, -1]: the causal model attends to its cache)", self.window_size)
        })?;
        c.ensure(self.qk_norm, "qk_norm", || "false is not supported (every released checkpoint normalises q and k)".into())?;
        c.ensure(self.eps > 0.0 && self.eps < 1.0, "eps", || format!("{} is outside (0, 1)", self.eps))?;
        let bounded = self.local_attn_size > 0;
        c.ensure(self.local_attn_size == -1 || bounded, "local_attn_size", || {
            format!("{} must be -1 (unbounded) or a positive frame count", self.local_attn_size)
        })?;
        c.ensure(!bounded || (self.sink_size as i64) < self.local_attn_size, "sink_size", || {
            format!("{} must be below local_attn_size {} so the window has room beside the sinks", self.sink_size, self.local_attn_size)
        })?;
        let memory = self.memory_type.as_str();
        c.ensure(MemoryType::from_name(memory).is_some(), "memory_type", || {
            format!("{memory:?} is not a memory form: use \"gated_linear\" (MEMORY.md B.3) or \"gated_delta\" (B.6)")
        })?;
        if self.memory() == MemoryType::GatedDelta {
            let t = self.memory_horizon.unwrap_or(0);
            c.ensure((1..=super::MAX_DIM).contains(&t), "memory_horizon", || match self.memory_horizon {
                None => "is required by \"gated_delta\": the latent frames after which the router is fully open".into(),
                Some(t) => format!("{t} is outside 1..={}", super::MAX_DIM),
            })?;
        }
        Ok(())
    }

    /// The memory form; a name [`DitConfig::validate`] refuses reads as the default.
    pub fn memory(&self) -> MemoryType {
        MemoryType::from_name(&self.memory_type).unwrap_or(MemoryType::GatedLinear)
    }

    /// B.6: a chunk's tokens cache their gates on its clean pass, so none may be
    /// evicted by the chunk itself: the window must hold a whole chunk of
    /// `frames_per_chunk` latent frames besides the sinks. Always true of B.3 and
    /// memoryless models that run at all; `path` names the source in the error.
    pub fn check_chunk(&self, path: &Path, frames_per_chunk: usize) -> Result<()> {
        let (window, sink) = (self.local_attn_size, self.sink_size as i64);
        let ok = self.memory() != MemoryType::GatedDelta || window < 0 || window - sink >= frames_per_chunk as i64;
        Checker { path }.ensure(ok, "local_attn_size", || {
            format!(
                "a gated_delta memory needs local_attn_size − sink_size ≥ num_frame_per_block so a chunk never evicts its own tokens \
                 before their clean pass caches them (MEMORY.md B.6): {window} − {sink} < {frames_per_chunk}"
            )
        })
    }

    pub fn head_dim(&self) -> usize {
        self.dim / self.num_heads
    }

    /// Every tensor of the checkpoint with its shape (MODEL.md A; with `memory`, the
    /// `memory.*` keys of this config's [`MemoryType`], MEMORY.md B.3 or B.6).
    pub fn expected_tensors(&self, memory: bool) -> Expected {
        let (d, h) = (self.dim, self.num_heads);
        let mut e = Expected::default();
        e.float("patch_embedding.weight", &[d, self.in_dim, 1, 2, 2]);
        e.float("patch_embedding.bias", &[d]);
        e.linear("text_embedding.0", d, self.text_dim);
        e.linear("text_embedding.2", d, d);
        e.linear("time_embedding.0", d, self.freq_dim);
        e.linear("time_embedding.2", d, d);
        e.linear("time_projection.1", 6 * d, d);
        for n in 0..self.num_layers {
            let b = format!("blocks.{n}");
            for a in ["self_attn", "cross_attn"] {
                for p in ["q", "k", "v", "o"] {
                    e.linear(&format!("{b}.{a}.{p}"), d, d);
                }
                e.float(format!("{b}.{a}.norm_q.weight"), &[d]);
                e.float(format!("{b}.{a}.norm_k.weight"), &[d]);
            }
            if self.cross_attn_norm {
                e.float(format!("{b}.norm3.weight"), &[d]);
                e.float(format!("{b}.norm3.bias"), &[d]);
            }
            e.linear(&format!("{b}.ffn.0"), self.ffn_dim, d);
            e.linear(&format!("{b}.ffn.2"), d, self.ffn_dim);
            e.float(format!("{b}.modulation"), &[1, 6, d]);
            if memory {
                let m = format!("{b}.self_attn.memory");
                e.float(format!("{m}.A_log"), &[h]);
                e.linear(&format!("{m}.alpha"), h, d);
                match self.memory() {
                    MemoryType::GatedLinear => {
                        e.linear(&format!("{m}.beta"), h, d);
                        e.linear(&format!("{m}.gate"), h, d);
                    }
                    MemoryType::GatedDelta => {
                        // Eq. 5 has no bias on β; Eq. 8–9's norm, output gate and router.
                        e.float(format!("{m}.beta.weight"), &[h, d]);
                        e.float(format!("{m}.norm.weight"), &[self.head_dim()]);
                        e.linear(&format!("{m}.out_gate"), d, d);
                        e.float(format!("{m}.router.weight"), &[d, 1]);
                        e.float(format!("{m}.router.bias"), &[d]);
                    }
                }
            }
        }
        e.linear("head.head", self.out_dim * 4, d);
        e.float("head.modulation", &[1, 2, d]);
        e
    }
}
