//! How chunks are generated: Self-Forcing's inference settings and the flow-matching
//! schedule they resolve to.
use super::{read_json, Checker};
use crate::error::Result;
use serde::Deserialize;
use std::path::Path;

/// Training timesteps beyond this are a hostile config, not a schedule (the table is allocated).
const MAX_TRAIN_TIMESTEPS: u32 = 1 << 20;

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

/// Self-Forcing's published settings (MODEL.md D).
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

/// `torch.linspace(start, end, steps)` in f32, bit for bit: the first half steps
/// up from `start`, the second half back from `end`.
fn linspace(start: f32, end: f32, steps: usize) -> Vec<f32> {
    let step = (end - start) / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps).map(|i| if i < half { start + step * i as f32 } else { end - step * (steps - 1 - i) as f32 }).collect()
}

impl GenerationConfig {
    pub fn load(path: &Path) -> Result<GenerationConfig> {
        let c: GenerationConfig = read_json(path)?;
        c.validate(path)?;
        Ok(c)
    }

    /// Checks every field; `path` only names the source in errors.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let c = Checker { path };
        let n = self.num_train_timestep;
        c.ensure((1..=MAX_TRAIN_TIMESTEPS).contains(&n), "num_train_timestep", || format!("{n} is outside 1..={MAX_TRAIN_TIMESTEPS}"))?;
        c.ensure((1..=1024).contains(&self.num_frame_per_block), "num_frame_per_block", || {
            format!("{} is outside 1..=1024", self.num_frame_per_block)
        })?;
        let steps = &self.denoising_step_list;
        c.ensure(!steps.is_empty(), "denoising_step_list", || "is empty; at least one step is needed".into())?;
        if let Some(&t) = steps.iter().find(|&&t| t == 0 || t > n) {
            c.ensure(false, "denoising_step_list", || format!("denoising step {t} is outside 1..={n}"))?;
        }
        c.ensure(steps.windows(2).all(|w| w[0] > w[1]), "denoising_step_list", || format!("{steps:?} must decrease strictly"))?;
        c.ensure(self.timestep_shift.is_finite() && self.timestep_shift > 0.0, "timestep_shift", || {
            format!("{} must be a positive number", self.timestep_shift)
        })?;
        c.ensure(self.context_noise <= n, "context_noise", || format!("{} is outside 0..={n}", self.context_noise))?;
        if let Some(f) = self.num_latent_frames {
            let fpb = self.num_frame_per_block;
            c.ensure(f > 0 && f % fpb == 0, "num_latent_frames", || {
                format!("{f} must be a positive multiple of num_frame_per_block {fpb}")
            })?;
        }
        for (v, field) in [(self.latent_height, "latent_height"), (self.latent_width, "latent_width")] {
            if let Some(v) = v {
                c.ensure(v >= 2 && v % 2 == 0 && v <= super::MAX_DIM, field, || {
                    format!("{v} must be even (2x2 patches) and in 2..={}", super::MAX_DIM)
                })?;
            }
        }
        Ok(())
    }

    /// (timestep t_s, σ_s) of every denoising step in f32, as Self-Forcing's
    /// FlowMatchScheduler computes them (MODEL.md A.5): σ = linspace(1, 0, n+1)[:n]
    /// shifted to s·σ/(1+(s−1)·σ), t = n·σ. Warped steps k pick entry n−k of that
    /// table; plain steps are used as timesteps with the σ of the nearest entry.
    pub fn schedule(&self) -> Vec<(f32, f32)> {
        let n = self.num_train_timestep as usize;
        let s = self.timestep_shift as f32;
        let sigmas: Vec<f32> = linspace(1.0, 0.0, n + 1)[..n].iter().map(|&x| s * x / (1.0 + (s - 1.0) * x)).collect();
        let timesteps: Vec<f32> = sigmas.iter().map(|&x| x * n as f32).collect();
        if n == 0 {
            return Vec::new();
        }
        // torch.argmin: the first of equal distances.
        let nearest = |t: f32| (0..n).fold(0, |best, j| if (timesteps[j] - t).abs() < (timesteps[best] - t).abs() { j } else { best });
        self.denoising_step_list
            .iter()
            .map(|&k| {
                if self.warp_denoising_step {
                    // Clamped so an unvalidated config cannot index out of the table.
                    let i = n.saturating_sub(k as usize).min(n - 1);
                    (timesteps[i], sigmas[i])
                } else {
                    (k as f32, sigmas[nearest(k as f32)])
                }
            })
            .collect()
    }
}
