//! The Wan VAE decoder, streaming (../shared/spec/TEXT_VAE.md C.2).
//!
//! One graph is compiled per chunk length (plus one for the video's first latent
//! frame, which skips the temporal upsampling) and replayed for every chunk of that
//! length. The causal caches — the last two input frames of every time-kernel-3
//! conv — are session tensors shared by all graphs, so decoding chunk by chunk
//! gives the same video as decoding everything at once. Where a latent frame's
//! tensors would exceed a storage binding (480×832 on 128 MiB adapters) or its
//! activations a budget, the layers past the last attention run in row bands
//! (`bands.rs`), with the same output.
mod bands;
mod graph;
pub mod load;
pub mod session;
pub mod weights;

pub use session::{to_rgb8, VaeDecoder, VaeOptions};

use crate::error::Result;
use runtime::{DType, Gpu, Tensor};
use std::collections::BTreeMap;

/// The per-conv frame caches `[2, H, W, Cin]`, by conv name (`decoder.conv1.cache`);
/// a banded conv has one per row band `j`, `[2, rows_j, W, Cin]` (`decoder.head.2.cache@j`),
/// all of one dtype ([`crate::models::cache_dtype`]).
pub struct Caches {
    tensors: BTreeMap<String, Tensor>,
    pub dtype: DType,
}

impl Caches {
    pub fn new(dtype: DType) -> Caches {
        Caches { tensors: BTreeMap::new(), dtype }
    }

    /// The cache `name`, created zeroed on first use.
    pub fn get(&mut self, gpu: &Gpu, name: &str, shape: &[usize]) -> Result<Tensor> {
        if let Some(t) = self.tensors.get(name) {
            return Ok(t.clone());
        }
        let t = gpu.empty(name, shape, self.dtype)?;
        self.tensors.insert(name.to_string(), t.clone());
        Ok(t)
    }

    /// Zeroes every cache: the next chunk starts a new video.
    pub fn reset(&self, gpu: &Gpu) -> Result<()> {
        for t in self.tensors.values() {
            gpu.write(t, &vec![0.0; t.numel()])?;
        }
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.tensors.values().map(|t| t.bytes()).sum()
    }
}
