//! The two stages around the DiT: prompt → text embeddings, latents → RGB frames.
//! The pipeline calls them here and nowhere else.
//!
//! Frames come from the streaming Wan VAE decoder. The text stage is interim until
//! the umT5 encoder (`graph::models::t5`) lands: it maps a prompt to a fixed
//! pseudo-random embedding seeded by its bytes (same prompt, same embedding).
use super::Frame;
use crate::synthetic::Rng;
use graph::models::vae::{to_rgb8, weights::VaeWeights, VaeDecoder};
use graph::CompileOptions;
use runtime::Gpu;
use std::collections::HashMap;
use std::sync::Arc;
use weights::VaeConfig;

/// Pixels per latent pixel (Wan VAE spatial stride).
pub const VAE_STRIDE: usize = 8;

pub struct TextStage {
    text_len: usize,
    text_dim: usize,
    cache: HashMap<String, Vec<f32>>,
}

impl TextStage {
    pub fn new(text_len: usize, text_dim: usize) -> TextStage {
        TextStage { text_len, text_dim, cache: HashMap::new() }
    }

    /// `[text_len, text_dim]` embeddings of `prompt`, computed once per prompt.
    pub fn encode(&mut self, prompt: &str) -> crate::Result<Vec<f32>> {
        let n = self.text_len * self.text_dim;
        Ok(self
            .cache
            .entry(prompt.to_string())
            .or_insert_with(|| {
                // FNV-1a of the prompt seeds the draw.
                let seed = prompt.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
                Rng::new(seed).normals(n, 1.0)
            })
            .clone())
    }
}

/// Decodes one chunk's latents at a time; the VAE's causal caches carry over.
pub struct DecodeStage {
    vae: VaeDecoder,
    latent_frame: usize,
}

impl DecodeStage {
    pub fn new(gpu: Arc<Gpu>, weights: VaeWeights, cfg: &VaeConfig, h: usize, w: usize) -> crate::Result<DecodeStage> {
        let vae = VaeDecoder::new(gpu, weights, cfg, h, w, CompileOptions::default())?;
        Ok(DecodeStage { vae, latent_frame: cfg.z_dim * h * w })
    }

    /// Continues a restored video: `recent` are the latents of its last chunk, decoded
    /// (and dropped) so the next chunk is not taken for the video's first and the
    /// causal caches hold that chunk's frames. The caches before it are not in a
    /// snapshot, so the first frames after a resume can differ slightly in pixels
    /// (the latents are exact).
    pub fn resume(&mut self, recent: &[f32]) -> crate::Result<()> {
        if !recent.is_empty() {
            self.decode(recent)?;
        }
        Ok(())
    }

    /// RGB frames of `latents` `[F, C, h, w]`.
    pub fn decode(&mut self, latents: &[f32]) -> crate::Result<Vec<Frame>> {
        let frames = latents.len() / self.latent_frame.max(1);
        let video = self.vae.decode(latents, frames)?;
        let (height, width) = self.vae.video_size();
        let plane = height * width;
        // [n, 3, H, W] planes → interleaved RGB rows.
        Ok(to_rgb8(&video)
            .chunks_exact(3 * plane)
            .map(|f| Frame { width, height, rgb: (0..plane).flat_map(|p| [f[p], f[plane + p], f[2 * plane + p]]).collect() })
            .collect())
    }
}
