//! Model and generation settings: Wan's `config.json` plus the cache settings,
//! and Self-Forcing's generation settings with their published defaults.
use crate::error::{Result, WeightsError};
use serde::Deserialize;
use std::path::Path;

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| WeightsError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text).map_err(|e| WeightsError::Config { path: path.to_path_buf(), message: e.to_string() })
}

fn neg1() -> i64 {
    -1
}

/// The generator's architecture (`config.json`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct DitConfig {
    #[serde(default)]
    pub model_type: String,
    pub patch_size: [usize; 3],
    pub text_len: usize,
    pub in_dim: usize,
    pub dim: usize,
    pub ffn_dim: usize,
    pub freq_dim: usize,
    pub text_dim: usize,
    pub out_dim: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    #[serde(default = "default_true")]
    pub qk_norm: bool,
    #[serde(default = "default_true")]
    pub cross_attn_norm: bool,
    pub eps: f64,
    /// Latent frames the self-attention cache holds, sinks included; −1 = unbounded.
    #[serde(default = "neg1")]
    pub local_attn_size: i64,
    /// Leading latent frames never evicted.
    #[serde(default)]
    pub sink_size: usize,
}

fn default_true() -> bool {
    true
}

impl DitConfig {
    pub fn load(path: &Path) -> Result<DitConfig> {
        let c: DitConfig = read_json(path)?;
        c.check().map_err(|message| WeightsError::Config { path: path.to_path_buf(), message })?;
        Ok(c)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.patch_size != [1, 2, 2] {
            return Err(format!("patch_size {:?} is not supported (only [1, 2, 2], as every released Wan model)", self.patch_size));
        }
        if self.num_heads == 0 || self.dim % self.num_heads != 0 {
            return Err(format!("dim {} is not divisible by num_heads {}", self.dim, self.num_heads));
        }
        let d = self.dim / self.num_heads;
        if d % 2 != 0 || d < 6 {
            return Err(format!("head dim {d} must be even and at least 6 for the 3-axis RoPE"));
        }
        if !self.qk_norm {
            return Err("qk_norm = false is not supported (every released checkpoint uses it)".into());
        }
        if self.local_attn_size == 0 || self.local_attn_size < -1 {
            return Err(format!("local_attn_size {} must be -1 (unbounded) or a positive frame count", self.local_attn_size));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.dim / self.num_heads
    }

    /// Every tensor of the checkpoint with its shape (MODEL.md, MEMORY.md B.3).
    pub fn expected_tensors(&self, memory: bool) -> Vec<(String, Vec<usize>)> {
        let (d, h) = (self.dim, self.num_heads);
        let mut v: Vec<(String, Vec<usize>)> = Vec::new();
        let mut lin = |name: &str, out: usize, inp: usize| {
            v.push((format!("{name}.weight"), vec![out, inp]));
            v.push((format!("{name}.bias"), vec![out]));
        };
        lin("text_embedding.0", d, self.text_dim);
        lin("text_embedding.2", d, d);
        lin("time_embedding.0", d, self.freq_dim);
        lin("time_embedding.2", d, d);
        lin("time_projection.1", 6 * d, d);
        lin("head.head", self.out_dim * 4, d);
        for n in 0..self.num_layers {
            for a in ["self_attn", "cross_attn"] {
                for p in ["q", "k", "v", "o"] {
                    lin(&format!("blocks.{n}.{a}.{p}"), d, d);
                }
            }
            lin(&format!("blocks.{n}.ffn.0"), self.ffn_dim, d);
            lin(&format!("blocks.{n}.ffn.2"), d, self.ffn_dim);
            if memory {
                for p in ["beta", "alpha", "gate"] {
                    lin(&format!("blocks.{n}.self_attn.memory.{p}"), h, d);
                }
            }
        }
        v.push(("patch_embedding.weight".into(), vec![d, self.in_dim, 1, 2, 2]));
        v.push(("patch_embedding.bias".into(), vec![d]));
        v.push(("head.modulation".into(), vec![1, 2, d]));
        for n in 0..self.num_layers {
            for a in ["self_attn", "cross_attn"] {
                v.push((format!("blocks.{n}.{a}.norm_q.weight"), vec![d]));
                v.push((format!("blocks.{n}.{a}.norm_k.weight"), vec![d]));
            }
            if self.cross_attn_norm {
                v.push((format!("blocks.{n}.norm3.weight"), vec![d]));
                v.push((format!("blocks.{n}.norm3.bias"), vec![d]));
            }
            v.push((format!("blocks.{n}.modulation"), vec![1, 6, d]));
            if memory {
                v.push((format!("blocks.{n}.self_attn.memory.A_log"), vec![h]));
            }
        }
        v
    }
}

/// How chunks are generated (Self-Forcing's inference settings).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct GenerationConfig {
    pub num_frame_per_block: usize,
    pub denoising_step_list: Vec<u32>,
    pub warp_denoising_step: bool,
    pub timestep_shift: f64,
    pub num_train_timestep: u32,
    pub context_noise: u32,
    pub num_latent_frames: Option<usize>,
    pub latent_height: Option<usize>,
    pub latent_width: Option<usize>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            num_frame_per_block: 3,
            denoising_step_list: vec![1000, 750, 500, 250],
            warp_denoising_step: true,
            timestep_shift: 5.0,
            num_train_timestep: 1000,
            context_noise: 0,
            num_latent_frames: None,
            latent_height: None,
            latent_width: None,
        }
    }
}

impl GenerationConfig {
    pub fn load(path: &Path) -> Result<GenerationConfig> {
        let c: GenerationConfig = read_json(path)?;
        c.check().map_err(|message| WeightsError::Config { path: path.to_path_buf(), message })?;
        Ok(c)
    }

    pub fn check(&self) -> std::result::Result<(), String> {
        if self.num_frame_per_block == 0 {
            return Err("num_frame_per_block must be at least 1".into());
        }
        if self.denoising_step_list.is_empty() {
            return Err("denoising_step_list is empty".into());
        }
        if let Some(&t) = self.denoising_step_list.iter().find(|&&t| t == 0 || t > self.num_train_timestep) {
            return Err(format!("denoising step {t} is outside 1..={}", self.num_train_timestep));
        }
        if !(self.timestep_shift > 0.0) {
            return Err(format!("timestep_shift {} must be positive", self.timestep_shift));
        }
        Ok(())
    }

    /// (timestep, σ) of every denoising step (MODEL.md A.5), in f32 as the model sees them.
    pub fn schedule(&self) -> Vec<(f32, f32)> {
        let n = self.num_train_timestep as usize;
        let s = self.timestep_shift;
        // σ over the training steps: linspace(1, 0, n+1)[:n], shifted; computed in f32 like torch.
        let sigmas: Vec<f32> = (0..n)
            .map(|i| {
                let base = (1.0 - i as f64 / n as f64) as f32;
                ((s as f32 * base) / (1.0 + (s as f32 - 1.0) * base)) as f32
            })
            .collect();
        self.denoising_step_list
            .iter()
            .map(|&t| {
                if self.warp_denoising_step {
                    let sigma = sigmas[n - t as usize];
                    (sigma * n as f32, sigma)
                } else {
                    (t as f32, t as f32 / n as f32)
                }
            })
            .collect()
    }
}
