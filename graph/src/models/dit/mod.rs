//! The causal Wan DiT with VideoSSM's hybrid memory (../shared/spec/MODEL.md, MEMORY.md).
//!
//! Two graphs are compiled per (config, latent size): the *prompt* graph turns text
//! embeddings into every block's cross-attention keys/values (once per prompt), and
//! the *pass* graph runs the model on one chunk (every denoising step and the
//! clean context pass replay it). The KV window, sinks and memory state are
//! session tensors bound into both, never planner-owned.
mod block;
pub mod graph;
pub mod load;
mod memory;
pub mod sampler;
pub mod session;
pub mod weights;
pub mod window;

use runtime::{DType, Gpu, Tensor};

/// Sizes of one chunk call, derived from the config and the latent size.
#[derive(Clone, Debug, PartialEq)]
pub struct DitDims {
    pub dim: usize,
    pub heads: usize,
    pub frames: usize,
    pub channels: usize,
    pub out_channels: usize,
    pub height: usize,
    pub width: usize,
    /// Patch grid: rows × cols tokens per frame.
    pub rows: usize,
    pub cols: usize,
    pub freq_dim: usize,
    pub text_len: usize,
    pub text_dim: usize,
    pub eps: f64,
    /// B.6 router's T in latent frames (`memory_horizon`); unused by other models.
    pub memory_horizon: usize,
}

impl DitDims {
    pub fn new(cfg: &::weights::DitConfig, frames: usize, height: usize, width: usize) -> DitDims {
        DitDims {
            dim: cfg.dim,
            heads: cfg.num_heads,
            frames,
            channels: cfg.in_dim,
            out_channels: cfg.out_dim,
            height,
            width,
            rows: height / 2,
            cols: width / 2,
            freq_dim: cfg.freq_dim,
            text_len: cfg.text_len,
            text_dim: cfg.text_dim,
            eps: cfg.eps,
            memory_horizon: cfg.memory_horizon.unwrap_or(1),
        }
    }

    pub fn tokens_per_frame(&self) -> usize {
        self.rows * self.cols
    }

    pub fn tokens(&self) -> usize {
        self.frames * self.tokens_per_frame()
    }

    pub fn head_dim(&self) -> usize {
        self.dim / self.heads
    }

    /// B.6 router input of the call whose first frame is the absolute latent frame
    /// `frame0`: `ln ρ_f`, `ρ = min(1, (f + 1)/T)`, per frame, in f64 so any f is exact.
    pub fn ln_rho(&self, frame0: usize) -> Vec<f32> {
        let t = self.memory_horizon.max(1) as f64;
        (frame0..frame0 + self.frames).map(|f| ((f as f64 + 1.0) / t).min(1.0).ln() as f32).collect()
    }
}

/// Per-block memory caches (same slots as the KV cache) and the SSM state. The memory
/// keys k̂ are not cached: they are recovered from the KV cache's keys at eviction.
pub struct MemoryState {
    /// `β [capacity, H]`
    pub beta: Tensor,
    /// `a [capacity, H]`
    pub decay: Tensor,
    /// `S [H, d, d]`
    pub state: Tensor,
}

/// One block's session state. `k`, `v` (`[capacity, D]`), `ctx_k` and `ctx_v`
/// (`[text_len, D]`) are of the [`crate::models::cache_dtype`]; the rest f32.
pub struct BlockState {
    pub k: Tensor,
    pub v: Tensor,
    pub ctx_k: Tensor,
    pub ctx_v: Tensor,
    pub memory: Option<MemoryState>,
}

impl BlockState {
    /// `kv`: the caches' dtype, f32 or (where the adapter has `shader-f16`) f16.
    pub fn new(gpu: &Gpu, n: usize, capacity: usize, dims: &DitDims, memory: bool, kv: DType) -> runtime::Result<BlockState> {
        let (d, h, hd) = (dims.dim, dims.heads, dims.head_dim());
        let typed = |name: &str, shape: &[usize], dtype| gpu.empty(&format!("blocks.{n}.{name}"), shape, dtype);
        let t = |name: &str, shape: &[usize]| typed(name, shape, DType::F32);
        Ok(BlockState {
            k: typed("cache_k", &[capacity, d], kv)?,
            v: typed("cache_v", &[capacity, d], kv)?,
            ctx_k: typed("ctx_k", &[dims.text_len, d], kv)?,
            ctx_v: typed("ctx_v", &[dims.text_len, d], kv)?,
            memory: if memory {
                Some(MemoryState {
                    beta: t("memory.beta", &[capacity, h])?,
                    decay: t("memory.decay", &[capacity, h])?,
                    state: t("memory.state", &[h, hd, hd])?,
                })
            } else {
                None
            },
        })
    }
}
