//! The two stages around the DiT: prompt → text embeddings (umT5), latents → RGB
//! frames (the streaming Wan VAE decoder). The pipeline calls them here and nowhere else.
use super::model::ModelFiles;
use super::Frame;
use crate::error::{invalid, Result};
use graph::models::t5::{T5Encoder, TextEncoder, Tokenizer};
use graph::models::vae::session::VaeMemory;
use graph::models::vae::{to_rgb8, weights::VaeWeights, VaeDecoder, VaeOptions};
use runtime::{DType, Gpu};
use std::sync::Arc;
use weights::snapshot::StateTensor;
use weights::{Checkpoint, DitConfig, VaeConfig};

/// Pixels per latent pixel (Wan VAE spatial stride).
pub const VAE_STRIDE: usize = 8;

/// The least activation budget [`vae_budget`] gives: small models keep few row bands.
const VAE_BUDGET_FLOOR: u64 = 64 << 20;

/// The VAE's activation budget beside DiT graphs that plan at most `dit_bytes`
/// (`Generator::planned_activation_bytes`): as many row bands as keep the decoder's
/// plan within what the shared buffers hold for the DiT anyway, never under
/// [`VAE_BUDGET_FLOOR`]. A band adds dispatches and copies of its two halo rows but no
/// arithmetic, once per chunk against the DiT's five calls; memory decides whether
/// the model fits a card at all.
pub fn vae_budget(dit_bytes: u64) -> u64 {
    dit_bytes.max(VAE_BUDGET_FLOOR)
}

/// The umT5 encoder with its tokenizer, padding to the generator's `text_len`; each
/// prompt is encoded once, its linears streamed through the device one at a time
/// (nothing of it stays there between prompts).
pub struct TextStage(TextEncoder);

impl TextStage {
    pub fn load(gpu: &Arc<Gpu>, files: &ModelFiles, dit: &DitConfig, dtype: DType) -> Result<TextStage> {
        let cfg = files.t5_config()?;
        if cfg.dim != dit.text_dim {
            return Err(invalid(
                "text encoder",
                format!("umT5 width {} does not match the generator's text_dim {}", cfg.dim, dit.text_dim),
            ));
        }
        let path = files.require(&files.t5, "t5.safetensors or models_t5_umt5-xxl-enc-bf16.pth", "the umT5 text encoder")?;
        // Read a linear at a time from the file at each new prompt: never all of it in memory.
        let ck = Checkpoint::open_lazy(path)?;
        let tok = files.require(&files.tokenizer, "tokenizer.json or google/umt5-xxl/tokenizer.json", "the umT5 tokenizer")?;
        let tokenizer = Tokenizer::from_file(tok, dit.text_len).map_err(graph::GraphError::from)?;
        let encoder = T5Encoder::load(gpu.clone(), ck, &cfg, dit.text_len, dtype)?;
        Ok(TextStage(TextEncoder::new(tokenizer, encoder)?))
    }

    /// What the last prompt's encoding cost.
    pub fn stats(&self) -> graph::models::t5::EncodeStats {
        self.0.encoder.stats()
    }

    /// `[text_len, text_dim]` embeddings of `prompt`, padding rows zero.
    pub fn encode(&mut self, prompt: &str) -> Result<Vec<f32>> {
        Ok(self.0.embed(prompt)?.as_ref().clone())
    }
}

/// Decodes one chunk's latents at a time; the VAE's causal caches carry over.
pub struct DecodeStage {
    vae: VaeDecoder,
    latent_frame: usize,
}

impl DecodeStage {
    /// A decoder for chunks of `frames` latent frames within `budget` bytes of shared
    /// activations ([`vae_budget`]), its activation buffers reserved.
    pub fn new(
        gpu: Arc<Gpu>,
        weights: VaeWeights,
        cfg: &VaeConfig,
        (h, w): (usize, usize),
        frames: usize,
        budget: u64,
    ) -> crate::Result<DecodeStage> {
        let opts = VaeOptions { activation_budget: Some(budget), ..VaeOptions::default() };
        let mut vae = VaeDecoder::new(gpu, weights, cfg, h, w, opts)?;
        vae.reserve(frames)?;
        Ok(DecodeStage { vae, latent_frame: cfg.z_dim * h * w })
    }

    /// Compiles the graphs chunks of `frames` latent frames run (their buffers allocated).
    pub fn prepare(&mut self, frames: usize) -> crate::Result<()> {
        Ok(self.vae.prepare(frames)?)
    }

    /// Planned device memory of a call of `frames` latent frames.
    pub fn memory(&self, frames: usize) -> crate::Result<VaeMemory> {
        Ok(self.vae.memory(frames)?)
    }

    /// The VAE's causal caches, for a snapshot.
    pub fn caches(&self) -> crate::Result<Vec<StateTensor>> {
        Ok(self.vae.caches()?)
    }

    /// Continues a restored video, at least one chunk in. With the snapshot's `caches`
    /// the next frames are the pixels the video would have had. A state without them
    /// (format 1, or saved after a lost device) decodes `recent`, the latents of its
    /// last chunk, and drops the frames: the caches then hold that chunk's frames but not
    /// what came before, so the first frames after the resume can differ slightly.
    pub fn resume(&mut self, caches: Option<&[StateTensor]>, recent: &[f32]) -> crate::Result<()> {
        match caches {
            Some(c) => Ok(self.vae.restore_caches(c)?),
            None if recent.is_empty() => Err(invalid("snapshot", "no VAE caches and no latents of its last chunk to decode")),
            None => {
                log::warn!("the snapshot has no VAE caches (saved after a lost device, or by an older version): the latents continue exactly, the first frames may differ slightly in pixels");
                self.decode(recent).map(drop)
            }
        }
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
