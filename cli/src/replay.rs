//! `videossm replay DIR`: run a parity bundle (../shared/parity/FORMAT.md) from its
//! recorded inputs and return the tensors named as in its `expected.safetensors`.
use anyhow::{bail, Context, Result};
use graph::models::dit::{load, sampler, session::Generator, DitDims};
use graph::CompileOptions;
use runtime::{DType, Gpu};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use weights::{Checkpoint, DitConfig, GenerationConfig};

/// Named output tensors with their shapes.
pub type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Options of a replay: the device weight dtype, forcing the memory off, the
/// activation size above which the generator works in row blocks
/// ([`CompileOptions::split_bytes`]; tests lower it to split small models) and the
/// KV caches' dtype ([`CompileOptions::kv_f16`]; `None`: as `VIDEOSSM_KV_F16` says, else by the weights).
#[derive(Clone, Copy, Debug)]
pub struct ReplayOptions {
    pub wdtype: DType,
    pub memory: bool,
    pub split_bytes: Option<u64>,
    pub kv_f16: Option<bool>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions { wdtype: DType::F32, memory: true, split_bytes: None, kv_f16: None }
    }
}

/// Runs whichever kind of bundle `dir` holds.
pub fn replay(gpu: Arc<Gpu>, dir: &Path, opts: ReplayOptions) -> Result<Tensors> {
    if dir.join("model.safetensors").exists() {
        let ck = Checkpoint::open(dir.join("model.safetensors"))?;
        replay_generator(gpu, dir, &ck, opts)
    } else if dir.join("vae.safetensors").exists() {
        crate::replay_vae::replay(gpu, dir, opts)
    } else if crate::replay_t5::is_bundle(dir) {
        crate::replay_t5::replay(gpu, dir, opts)
    } else {
        bail!("{}: not a generator, VAE or text-encoder bundle (no model.safetensors, vae.safetensors or t5.safetensors)", dir.display())
    }
}

/// Runs a generator bundle's settings and inputs with the weights `ck` (the bundle's
/// own, or a variant of them in tests).
pub fn replay_generator(gpu: Arc<Gpu>, dir: &Path, ck: &Checkpoint, opts: ReplayOptions) -> Result<Tensors> {
    let cfg = DitConfig::load(&dir.join("config.json"))?;
    let gen = GenerationConfig::load(&dir.join("generation.json"))?;
    let inputs = Checkpoint::open(dir.join("inputs.safetensors"))?;
    let (frames, h, w) = match (gen.num_latent_frames, gen.latent_height, gen.latent_width) {
        (Some(f), Some(h), Some(w)) => (f, h, w),
        _ => bail!("{}: generation.json lacks num_latent_frames / latent_height / latent_width", dir.display()),
    };
    let fpb = gen.num_frame_per_block;
    cfg.check_chunk(&dir.join("config.json"), fpb)?;
    if frames % fpb != 0 {
        bail!("{}: {frames} latent frames are not whole chunks of {fpb}", dir.display());
    }
    let weights = load::load(&gpu, &cfg, ck, opts.wdtype, opts.memory)?;
    let dims = DitDims::new(&cfg, fpb, h, w);
    let capacity = if cfg.local_attn_size < 0 { frames } else { cfg.local_attn_size as usize };
    let defaults = CompileOptions::default();
    let compile = CompileOptions { split_bytes: opts.split_bytes, kv_f16: opts.kv_f16.or(defaults.kv_f16), ..defaults };
    let mut model = Generator::new(gpu, &weights, dims, capacity, cfg.sink_size, compile)?;
    model.set_context(&inputs.get("context")?.to_f32())?;
    let (timesteps, sigmas): (Vec<f32>, Vec<f32>) = gen.schedule().into_iter().unzip();
    let noise = inputs.get("noise")?.to_f32();
    let chunk_len = fpb * 16 * h * w;
    let chunk_shape = vec![fpb, cfg.in_dim, h, w];
    let mut out = Tensors::new();
    let mut latents = Vec::with_capacity(noise.len());
    for c in 0..frames / fpb {
        let mut renoise_err = None;
        let x0 = sampler::denoise_chunk(
            &mut model,
            &timesteps,
            &sigmas,
            gen.context_noise as f32,
            noise[c * chunk_len..(c + 1) * chunk_len].to_vec(),
            |s| match inputs.get(&format!("renoise.{c}.{s}")) {
                Ok(t) => t.to_f32(),
                Err(e) => {
                    renoise_err = Some(e);
                    vec![0.0; chunk_len]
                }
            },
            |s, flow, x0| {
                out.insert(format!("flow.{c}.{s}"), (chunk_shape.clone(), flow.to_vec()));
                out.insert(format!("x0.{c}.{s}"), (chunk_shape.clone(), x0.to_vec()));
            },
        )
        .with_context(|| format!("chunk {c}"))?;
        if let Some(e) = renoise_err {
            return Err(e.into());
        }
        latents.extend(x0);
    }
    out.insert("latents".into(), (vec![frames, cfg.in_dim, h, w], latents));
    Ok(out)
}

/// Writes `tensors` as an f32 safetensors file.
pub fn save(path: &Path, tensors: &Tensors) -> Result<()> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(k, (s, v))| (k.clone(), s.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    let views = bytes
        .iter()
        .map(|(k, s, b)| Ok((k.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)?)))
        .collect::<Result<Vec<_>>>()?;
    safetensors::tensor::serialize_to_file(views, None, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
