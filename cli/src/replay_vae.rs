//! `videossm replay` for VAE bundles (`vae-*`, ../shared/parity/FORMAT.md): the
//! latents decoded in one call (`video`) and chunk by chunk (`video_streamed`).
use crate::replay::{ReplayOptions, Tensors};
use anyhow::{bail, Context, Result};
use graph::models::vae::{VaeDecoder, VaeOptions};
use runtime::Gpu;
use std::path::Path;
use std::sync::Arc;
use weights::{Checkpoint, VaeConfig};

pub fn replay(gpu: Arc<Gpu>, dir: &Path, opts: ReplayOptions) -> Result<Tensors> {
    let cfg = VaeConfig::load(&dir.join("config.json"))?;
    let ck = Checkpoint::open(dir.join("vae.safetensors"))?;
    let inputs = Checkpoint::open(dir.join("inputs.safetensors"))?;
    let latents = inputs.get("latents")?;
    let shape = latents.shape.clone();
    let [frames, _, h, w] = shape[..] else { bail!("{}: latents {shape:?} are not [F, z, h, w]", dir.display()) };
    let data = latents.to_f32();
    let weights = graph::models::vae::load::load(&gpu, &cfg, &ck, opts.wdtype)?;
    let compile = graph::CompileOptions { kv_f16: opts.kv_f16, ..graph::CompileOptions::default() };
    let mut vae = VaeDecoder::new(gpu, weights, &cfg, h, w, VaeOptions { compile, activation_budget: None })?;
    let (vh, vw) = vae.video_size();
    let out_shape = |video: &[f32]| vec![video.len() / (3 * vh * vw), 3, vh, vw];
    let video = vae.decode_shaped(&data, &shape).context("whole-sequence decode")?;
    let mut out = Tensors::new();
    out.insert("video".into(), (out_shape(&video), video));

    let chunks = cfg.streamed_chunks.clone().unwrap_or_else(|| vec![frames]);
    if chunks.iter().sum::<usize>() != frames {
        bail!("{}: streamed_chunks {chunks:?} do not add up to {frames} latent frames", dir.display());
    }
    vae.reset()?;
    let per_frame = data.len() / frames;
    let (mut streamed, mut start) = (Vec::new(), 0);
    for &n in &chunks {
        streamed
            .extend(vae.decode(&data[start * per_frame..(start + n) * per_frame], n).with_context(|| format!("chunk at frame {start}"))?);
        start += n;
    }
    out.insert("video_streamed".into(), (out_shape(&streamed), streamed));
    Ok(out)
}
