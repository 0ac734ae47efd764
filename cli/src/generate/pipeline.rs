//! A loaded model: the DiT weights on the GPU, its settings after the caller's
//! overrides, and the text stage with its per-prompt cache. Sessions borrow it.
use super::model::ModelFiles;
use super::needs::Needs;
use super::stages::{vae_budget, DecodeStage, TextStage, VAE_STRIDE};
use super::SPATIAL_MULTIPLE;
use crate::error::{invalid, Result};
use graph::models::dit::{load, session::Generator, weights::DitWeights};
use graph::models::vae::weights::VaeWeights;
use runtime::{DType, Gpu, GpuOptions};
use std::path::Path;
use std::sync::{Arc, Mutex};
use weights::{Checkpoint, DitConfig, GenerationConfig, Kind, VaeConfig};

/// Self-Forcing's published resolution (480×832) in latent pixels, when generation.json is absent.
const DEFAULT_LATENT: (usize, usize) = (60, 104);
/// Largest frame side accepted, in pixels.
const MAX_SIDE: usize = 4096;

/// How to load a model; `None` keeps the model folder's value.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    pub gpu: GpuOptions,
    /// Device dtype of the matmul weights (f32, f16 or bf16); `None`: the DiT checkpoint's own.
    pub dtype: Option<DType>,
    /// Self-attention cache in latent frames, sinks included; −1 = unbounded.
    pub window: Option<i64>,
    /// Leading latent frames never evicted.
    pub sink: Option<usize>,
    /// Denoising step list (decreasing, in 1..=num_train_timestep).
    pub steps: Option<Vec<u32>>,
    /// Frame size in pixels (width, height), multiples of 16.
    pub size: Option<(usize, usize)>,
    /// A Self-Forcing / VideoSSM generator checkpoint replacing the folder's DiT weights.
    pub generator: Option<std::path::PathBuf>,
    /// Use the SSM global memory when the checkpoint has it.
    pub memory: bool,
    /// Device bytes a session may hold at its peak; sessions that would need more are refused.
    pub max_memory: Option<u64>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            gpu: GpuOptions::from_env(),
            dtype: None,
            window: None,
            sink: None,
            steps: None,
            size: None,
            generator: None,
            memory: true,
            max_memory: None,
        }
    }
}

pub struct Pipeline {
    pub(super) gpu: Arc<Gpu>,
    pub files: ModelFiles,
    /// The DiT settings, with the window and sink overrides applied.
    pub config: DitConfig,
    /// Chunking and schedule, with the step and size overrides applied (latent size always set).
    pub generation: GenerationConfig,
    pub(super) weights: DitWeights,
    /// Device dtype of the matmul and conv weights.
    pub dtype: DType,
    /// The device budget sessions are checked against ([`PipelineOptions::max_memory`]).
    pub max_memory: Option<u64>,
    text: Mutex<TextStage>,
    vae: (VaeConfig, VaeWeights),
}

/// Checks a frame size in pixels and returns it in latent pixels (rows, cols).
pub fn latent_size(width: usize, height: usize) -> Result<(usize, usize)> {
    for (v, what) in [(width, "width"), (height, "height")] {
        if v == 0 || v % SPATIAL_MULTIPLE != 0 || v > MAX_SIDE {
            return Err(invalid(
                what,
                format!(
                    "{v} px: must be a multiple of {SPATIAL_MULTIPLE} (VAE stride {VAE_STRIDE} × 2×2 patches) in {SPATIAL_MULTIPLE}..={MAX_SIDE}, e.g. {}",
                    (v.div_ceil(SPATIAL_MULTIPLE) * SPATIAL_MULTIPLE).clamp(SPATIAL_MULTIPLE, MAX_SIDE)
                ),
            ));
        }
    }
    Ok((height / VAE_STRIDE, width / VAE_STRIDE))
}

/// Checks the cache settings against the chunk size: sinks fit inside the window with a chunk beside them.
pub fn check_window(window: i64, sink: usize, fpb: usize) -> Result<()> {
    if window == -1 {
        return Ok(());
    }
    let need = sink + fpb;
    if window < need as i64 {
        let range = if window <= 0 { "-1 (unbounded) or " } else { "" };
        return Err(invalid(
            "window",
            format!("{window} latent frames cannot hold {sink} sink frames and a chunk of {fpb}: use {range}at least {need} (sink < window, window ≥ sink + chunk)"),
        ));
    }
    Ok(())
}

/// The device dtype a checkpoint's weights keep: that of most of its float bytes (f64 as f32).
fn stored_dtype(ck: &Checkpoint) -> DType {
    let mut bytes = [0u64; 3];
    for t in ck.tensors.values() {
        let i = match t.dtype {
            weights::DType::F16 => 1,
            weights::DType::BF16 => 2,
            _ => 0,
        };
        bytes[i] += t.data.len() as u64;
    }
    let most = (0..3).max_by_key(|&i| (bytes[i], std::cmp::Reverse(i))).unwrap_or(0);
    [DType::F32, DType::F16, DType::BF16][most]
}

/// Opens the DiT weights: a flat state dict, or the generator inside a Self-Forcing `.pt`.
fn open_dit(path: &Path) -> Result<Checkpoint> {
    let ck = Checkpoint::open(path)?;
    let (kind, prefix) = weights::inspect::locate(&ck);
    match kind {
        Kind::Dit | Kind::DitMemory if prefix.is_empty() => Ok(ck),
        Kind::Dit | Kind::DitMemory => {
            log::info!("{}: using the generator under {prefix}", path.display());
            Ok(ck.strip_prefix(&prefix)?)
        }
        other => Err(invalid("DiT weights", format!("{}: holds a {other} checkpoint, not a Wan DiT", path.display()))),
    }
}

/// The VAE decoder's settings and weights, checked against the DiT's latent channels.
fn load_vae(gpu: &Gpu, files: &ModelFiles, config: &DitConfig, dtype: DType) -> Result<(VaeConfig, VaeWeights)> {
    let path = files.require(&files.vae, "vae.safetensors or Wan2.1_VAE.pth", "the VAE decoder")?;
    let cfg = files.vae_config()?;
    if cfg.z_dim != config.out_dim {
        return Err(invalid(
            "VAE",
            format!("z_dim {} does not match the DiT's out_dim {}: another model's VAE", cfg.z_dim, config.out_dim),
        ));
    }
    let ck = Checkpoint::open(path)?;
    Ok((cfg.clone(), graph::models::vae::load::load(gpu, &cfg, &ck, dtype)?))
}

impl Pipeline {
    /// Loads the model in `dir` (see [`ModelFiles`]) onto the GPU `opts.gpu` picks.
    pub fn load(dir: &Path, opts: &PipelineOptions) -> Result<Pipeline> {
        let files = ModelFiles::find(dir, opts.generator.as_deref())?;
        let mut config = DitConfig::load(&files.config)?;
        let mut generation = match &files.generation {
            Some(p) => GenerationConfig::load(p)?,
            None => GenerationConfig::default(),
        };
        if let Some(steps) = &opts.steps {
            generation.denoising_step_list = steps.clone();
            generation.validate(Path::new("--steps"))?;
        }
        let (h, w) = match opts.size {
            Some((w, h)) => latent_size(w, h)?,
            None => (generation.latent_height.unwrap_or(DEFAULT_LATENT.0), generation.latent_width.unwrap_or(DEFAULT_LATENT.1)),
        };
        (generation.latent_height, generation.latent_width) = (Some(h), Some(w));
        if let Some(window) = opts.window {
            if window == 0 || window < -1 {
                return Err(invalid("window", format!("{window}: use -1 (unbounded) or a positive number of latent frames")));
            }
            config.local_attn_size = window;
        }
        if let Some(sink) = opts.sink {
            config.sink_size = sink;
        }
        check_window(config.local_attn_size, config.sink_size, generation.num_frame_per_block)?;
        config.check_chunk(&files.config, generation.num_frame_per_block)?;
        let gpu = Arc::new(Gpu::new(&opts.gpu)?);
        log::info!("loading {} on {gpu}", files.dit.display());
        let ck = open_dit(&files.dit)?;
        let dtype = opts.dtype.unwrap_or_else(|| stored_dtype(&ck));
        let weights = load::load(&gpu, &config, &ck, dtype, opts.memory)?;
        drop(ck);
        let text = Mutex::new(TextStage::load(&gpu, &files, &config, dtype)?);
        let vae = load_vae(&gpu, &files, &config, dtype)?;
        Ok(Pipeline { gpu, files, config, generation, weights, dtype, max_memory: opts.max_memory, text, vae })
    }

    /// A decoder for one video (its causal caches are per session), its activations
    /// within the [`vae_budget`] beside `dit`.
    pub(super) fn decoder(&self, dit: &Generator) -> Result<DecodeStage> {
        let g = &self.generation;
        let size = (g.latent_height.unwrap_or(0), g.latent_width.unwrap_or(0));
        DecodeStage::new(
            self.gpu.clone(),
            self.vae.1.clone(),
            &self.vae.0,
            size,
            g.num_frame_per_block,
            vae_budget(dit.planned_activation_bytes()),
        )
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// The global memory this pipeline runs: its form (MEMORY.md B.3 / B.6), or None
    /// for a checkpoint without one or a run with `--no-memory`.
    pub fn memory(&self) -> Option<weights::MemoryType> {
        self.weights.has_memory().then(|| self.config.memory())
    }

    /// Latent frames per chunk.
    pub fn chunk_frames(&self) -> usize {
        self.generation.num_frame_per_block
    }

    /// Frame size in pixels (width, height).
    pub fn frame_size(&self) -> (usize, usize) {
        let g = &self.generation;
        (g.latent_width.unwrap_or(0) * VAE_STRIDE, g.latent_height.unwrap_or(0) * VAE_STRIDE)
    }

    /// What the last prompt's encoding cost (tokens, seconds, device bytes).
    pub fn text_stats(&self) -> graph::models::t5::EncodeStats {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).stats()
    }

    /// Adds what the last prompt's encoding held on the device to `needs`.
    pub(super) fn text_needs(&self, needs: &mut Needs) {
        needs.text = self.text_stats();
    }

    /// `[text_len, text_dim]` embeddings of `prompt` (cached per prompt).
    pub fn encode_prompt(&self, prompt: &str) -> Result<Vec<f32>> {
        if prompt.trim().is_empty() {
            return Err(invalid("prompt", "is empty: describe the video, e.g. \"a red ball bouncing\""));
        }
        // A poisoned lock only means another session panicked mid-encode; the cache is still consistent.
        self.text.lock().unwrap_or_else(|e| e.into_inner()).encode(prompt)
    }
}
