//! The two stages around the DiT: prompt → text embeddings, latents → RGB frames.
//! The pipeline calls them here and nowhere else.
//!
//! Interim, until the umT5 encoder (`graph::models::t5`) and the streaming Wan VAE
//! decoder (`graph::models::vae`) land: the text stage maps a prompt to a fixed
//! pseudo-random embedding seeded by its bytes (same prompt, same embedding), and the
//! decoder is a latent preview (a fixed linear map of the latent channels to RGB,
//! each latent pixel an 8×8 block, each latent frame 4 video frames but the first),
//! which has the VAE's output sizes and frame counts.
use super::{Frame, TEMPORAL_STRIDE};
use crate::synthetic::Rng;
use std::collections::HashMap;

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

/// Decodes one chunk's latents at a time, carrying what the next chunk needs.
pub struct DecodeStage {
    channels: usize,
    height: usize,
    width: usize,
    /// Latent frames decoded so far (the very first gives a single video frame).
    decoded: usize,
}

impl DecodeStage {
    pub fn new(channels: usize, height: usize, width: usize) -> DecodeStage {
        DecodeStage { channels, height, width, decoded: 0 }
    }

    /// Continues after `latent_frames` already decoded (a restored session).
    pub fn resume(&mut self, latent_frames: usize) {
        self.decoded = latent_frames;
    }

    /// RGB frames of `latents` `[F, C, h, w]`.
    pub fn decode(&mut self, latents: &[f32]) -> crate::Result<Vec<Frame>> {
        let (c, h, w) = (self.channels, self.height, self.width);
        let plane = h * w;
        let (oh, ow) = (h * VAE_STRIDE, w * VAE_STRIDE);
        let mut frames = Vec::new();
        for z in latents.chunks_exact(c * plane) {
            let mut small = vec![0u8; plane * 3];
            for p in 0..plane {
                for (k, px) in small[3 * p..3 * p + 3].iter_mut().enumerate() {
                    // Each colour a signed sum over a third of the channels.
                    let v: f32 = (0..c).map(|ch| z[ch * plane + p] * if (ch + k) % 3 == 0 { 0.5 } else { -0.25 }).sum();
                    *px = ((v.tanh() + 1.0) * 127.5).round() as u8;
                }
            }
            let mut rgb = vec![0u8; oh * ow * 3];
            for y in 0..oh {
                for x in 0..ow {
                    let s = ((y / VAE_STRIDE) * w + x / VAE_STRIDE) * 3;
                    rgb[(y * ow + x) * 3..][..3].copy_from_slice(&small[s..s + 3]);
                }
            }
            let repeat = if self.decoded == 0 { 1 } else { TEMPORAL_STRIDE };
            self.decoded += 1;
            frames.extend(std::iter::repeat_n(Frame { width: ow, height: oh, rgb }, repeat));
        }
        Ok(frames)
    }
}
