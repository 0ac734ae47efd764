//! Random-weight models for benchmarks and long-run tests, scaled like trained
//! ones so activations stay in range over hundreds of chunks.
use crate::{Checkpoint, DType, DitConfig, Expected, HostTensor, T5Config, VaeConfig};

/// Deterministic random numbers (splitmix64, Box–Muller normals) without a
/// dependency, so benches, synthetic models and failing tests reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The generator's whole state, for snapshots: `Rng::from_state(r.state())` continues `r`.
    pub fn state(&self) -> u64 {
        self.0
    }

    pub fn from_state(state: u64) -> Rng {
        Rng(state)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [lo, hi].
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }

    pub fn normals(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
}

/// How a model's random tensors are scaled: weights ~ N(0, 1/fan_in), norm gains
/// (`gain(key)`) ~ 1 + N(0, 0.01), the rest (biases, modulations) ~ N(0, `small`²).
pub(crate) struct Scale {
    gain: fn(&str) -> bool,
    small: f32,
}

pub(crate) const DIT: Scale =
    Scale { gain: |k| k.ends_with("norm_q.weight") || k.ends_with("norm_k.weight") || k.ends_with("norm3.weight"), small: 0.2 };
pub(crate) const VAE: Scale = Scale { gain: |k| k.ends_with(".gamma"), small: 0.1 };
pub(crate) const T5: Scale = Scale { gain: |k| k.contains("norm"), small: 0.1 };

impl Scale {
    /// (mean, std) of tensor `key` of `shape`.
    pub(crate) fn of(&self, key: &str, shape: &[usize]) -> (f32, f32) {
        let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
        if (self.gain)(key) {
            (1.0, 0.1)
        } else if key.ends_with(".weight") {
            (0.0, 1.0 / (fan_in as f32).sqrt())
        } else {
            (0.0, self.small)
        }
    }
}

/// Every tensor of `expected` drawn at random (normals) as `scale` says.
fn random_tensors(expected: &Expected, seed: u64, scale: &Scale) -> Checkpoint {
    let mut rng = Rng::new(seed);
    let mut ck = Checkpoint::default();
    for t in expected.iter() {
        let (key, shape) = (t.key.clone(), t.shape.clone());
        let (mean, std) = scale.of(&key, &shape);
        let v = rng.normals(shape.iter().product(), std);
        let data = v.iter().flat_map(|x| (mean + x).to_le_bytes()).collect();
        ck.tensors.insert(key, HostTensor { shape, dtype: DType::F32, data });
    }
    ck
}

/// Every tensor `cfg` expects, drawn at random (biases and modulations ~ N(0, 0.2)).
pub fn random_checkpoint(cfg: &DitConfig, memory: bool, seed: u64) -> Checkpoint {
    random_tensors(&cfg.expected_tensors(memory), seed, &DIT)
}

/// Every VAE decoder tensor `cfg` expects, drawn at random (biases ~ N(0, 0.1)).
pub fn random_vae_checkpoint(cfg: &VaeConfig, seed: u64) -> Checkpoint {
    random_tensors(&cfg.expected_tensors(), seed, &VAE)
}

/// Every umT5 encoder tensor `cfg` expects, drawn at random (norm gains near 1).
pub fn random_t5_checkpoint(cfg: &T5Config, seed: u64) -> Checkpoint {
    random_tensors(&cfg.expected_tensors(), seed, &T5)
}

/// The words of the synthetic tokenizer, after `<pad>` = 0, `</s>` = 1, `<unk>` = 2.
pub(crate) const WORDS: &[&str] = &[
    "a", "an", "and", "the", "on", "in", "red", "green", "blue", "yellow", "white", "black", "gray", "circle", "square", "triangle",
    "ball", "cat", "dog", "bouncing", "moving", "sits", "jumps", "runs", "slowly", "fast",
];

/// A small word-level `tokenizer.json` (lower-cased, split on whitespace and
/// punctuation) that the umT5 tokenizer wrapper loads like the real one.
pub fn word_tokenizer_json() -> String {
    let vocab: serde_json::Map<String, serde_json::Value> =
        ["<pad>", "</s>", "<unk>"].iter().chain(WORDS).enumerate().map(|(i, w)| (w.to_string(), i.into())).collect();
    let special = |id: usize, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": true})
    };
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(0, "<pad>"), special(1, "</s>"), special(2, "<unk>")],
        "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
    })
    .to_string()
}

/// A 2-layer umT5 layout of width `dim` over [`word_tokenizer_json`]'s vocabulary.
pub fn small_t5_config(dim: usize) -> T5Config {
    T5Config {
        vocab: 3 + WORDS.len(),
        dim,
        dim_attn: dim,
        dim_ffn: 2 * dim,
        num_heads: 4,
        num_layers: 2,
        num_buckets: 32,
        shared_pos: false,
        dropout: 0.0,
    }
}

/// The benchmark's small configuration: the Wan layout at 1/6 width and 1/7.5 depth
/// (D = 256, 8 heads of 32, 4 blocks), a 9-frame window with 3 sinks, memory on.
pub fn small_config() -> DitConfig {
    DitConfig {
        model_type: "t2v".into(),
        patch_size: [1, 2, 2],
        text_len: 32,
        in_dim: 16,
        dim: 256,
        ffn_dim: 1024,
        freq_dim: 256,
        text_dim: 64,
        out_dim: 16,
        num_heads: 8,
        num_layers: 4,
        qk_norm: true,
        cross_attn_norm: true,
        eps: 1e-6,
        window_size: [-1, -1],
        local_attn_size: 9,
        sink_size: 3,
        memory_type: "gated_linear".into(),
        memory_horizon: None,
    }
}

/// Writes `ck` as an f32 safetensors file.
pub fn save_checkpoint(ck: &Checkpoint, path: &std::path::Path) -> std::io::Result<()> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = ck
        .tensors
        .iter()
        .map(|(k, t)| Ok((k.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), &t.data)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()
        .map_err(std::io::Error::other)?;
    safetensors::tensor::serialize_to_file(views, None, path).map_err(std::io::Error::other)
}

/// A small Wan-layout VAE (4 stages: 8× spatial, 4× temporal) for latents of `z_dim` channels.
pub fn small_vae_config(dim: usize, z_dim: usize) -> VaeConfig {
    VaeConfig {
        dim,
        z_dim,
        dim_mult: vec![1, 2, 4, 4],
        num_res_blocks: 1,
        attn_scales: vec![],
        temperal_downsample: vec![false, true, true],
        dropout: 0.0,
        latent_mean: vec![0.0; z_dim],
        latent_std: vec![1.0; z_dim],
        streamed_chunks: None,
    }
}

/// The small model of the product tests and the soak bench, at the parity bundles'
/// size: D = 64, 4 heads, 2 blocks, 32×32 frames, chunks of 3 latent frames, a 9-frame
/// window with 3 sinks, memory on; the VAE of the vae-small bundle's shape (dim 8).
pub fn write_small_model_folder(dir: &std::path::Path) -> std::io::Result<()> {
    write_small_model_folder_with(dir, crate::MemoryType::GatedLinear)
}

/// [`write_small_model_folder`] with the memory form `memory`; B.6's router opens over
/// 12 latent frames, as in the dit-memory-gd bundle.
pub fn write_small_model_folder_with(dir: &std::path::Path, memory: crate::MemoryType) -> std::io::Result<()> {
    let mut cfg = small_config();
    (cfg.dim, cfg.ffn_dim, cfg.freq_dim, cfg.num_heads, cfg.num_layers, cfg.text_len, cfg.text_dim) = (64, 128, 32, 4, 2, 16, 48);
    cfg.memory_type = memory.name().into();
    cfg.memory_horizon = (memory == crate::MemoryType::GatedDelta).then_some(12);
    let gen = crate::GenerationConfig { latent_height: Some(4), latent_width: Some(4), ..crate::GenerationConfig::default() };
    write_model_folder(dir, &cfg, &gen, &small_vae_config(8, 16), true, 11)
}

/// `config.json` of `cfg`: Wan's fields plus the cache and memory settings.
pub fn dit_config_json(cfg: &DitConfig) -> serde_json::Value {
    serde_json::json!({
        "model_type": cfg.model_type, "patch_size": cfg.patch_size, "text_len": cfg.text_len, "in_dim": cfg.in_dim,
        "dim": cfg.dim, "ffn_dim": cfg.ffn_dim, "freq_dim": cfg.freq_dim, "text_dim": cfg.text_dim, "out_dim": cfg.out_dim,
        "num_heads": cfg.num_heads, "num_layers": cfg.num_layers, "window_size": cfg.window_size, "qk_norm": cfg.qk_norm,
        "cross_attn_norm": cfg.cross_attn_norm, "eps": cfg.eps, "local_attn_size": cfg.local_attn_size, "sink_size": cfg.sink_size,
        "memory_type": cfg.memory_type, "memory_horizon": cfg.memory_horizon,
    })
}

/// Writes a model folder in videossm's layout (`config.json`, `generation.json`,
/// `model.safetensors`, `vae_config.json`, `vae.safetensors`, `t5_config.json`,
/// `t5.safetensors`, `tokenizer.json`) with random weights, for tests and demos of
/// the pipeline. The text encoder is [`small_t5_config`] at the generator's `text_dim`.
pub fn write_model_folder(
    dir: &std::path::Path,
    cfg: &DitConfig,
    gen: &crate::GenerationConfig,
    vae: &VaeConfig,
    memory: bool,
    seed: u64,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), dit_config_json(cfg).to_string())?;
    let generation = serde_json::json!({
        "num_frame_per_block": gen.num_frame_per_block, "denoising_step_list": gen.denoising_step_list,
        "warp_denoising_step": gen.warp_denoising_step, "timestep_shift": gen.timestep_shift,
        "num_train_timestep": gen.num_train_timestep, "context_noise": gen.context_noise,
        "latent_height": gen.latent_height, "latent_width": gen.latent_width,
    });
    std::fs::write(dir.join("generation.json"), generation.to_string())?;
    std::fs::write(dir.join("vae_config.json"), serde_json::to_string(vae)?)?;
    let t5 = small_t5_config(cfg.text_dim);
    std::fs::write(dir.join("t5_config.json"), serde_json::to_string(&t5)?)?;
    std::fs::write(dir.join("tokenizer.json"), word_tokenizer_json())?;
    save_checkpoint(&random_checkpoint(cfg, memory, seed), &dir.join("model.safetensors"))?;
    save_checkpoint(&random_vae_checkpoint(vae, seed + 1), &dir.join("vae.safetensors"))?;
    save_checkpoint(&random_t5_checkpoint(&t5, seed + 2), &dir.join("t5.safetensors"))
}
