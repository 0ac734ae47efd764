//! What a model needs of an adapter at its configured size, read from one session's
//! compiled graphs: weight bytes by dtype, the session state (KV window, sinks, SSM
//! state, VAE caches), the planner's activation bytes of the DiT, umT5 and VAE graphs,
//! and the largest single tensor, which must fit one storage binding. wgpu reports no
//! adapter memory size, so the total is for the user to compare with the card's.
use graph::executor::Compiled;
use graph::ir::Kind;
use graph::models::vae::session::VaeMemory;
use runtime::{DType, Gpu};
use std::collections::{BTreeMap, HashSet};

/// Device bytes of one session, by kind, with the limits they must respect.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    /// Weight bytes by model (`DiT`, `umT5`, `VAE`) and device dtype.
    pub weights: BTreeMap<(&'static str, String), u64>,
    /// KV window, sinks, cross-attention cache and SSM state.
    pub state_bytes: u64,
    pub vae_cache_bytes: u64,
    /// Planned activations (after lifetime reuse) with inputs/outputs, by model; the VAE's
    /// are those of one chunk.
    pub activations: Vec<(String, u64)>,
    /// The largest single tensor: (what, bytes).
    pub largest: (String, u64),
    /// What the device allocator holds once the session is compiled, where it says.
    pub allocated: Option<u64>,
    /// Why the model does not fit, if it does not (empty: it fits).
    pub problems: Vec<String>,
    /// The umT5 encoding of the last prompt, streamed layer by layer: what it adds to the device for a moment.
    pub text: graph::models::t5::EncodeStats,
}

impl Needs {
    /// Adds the tensors of the graphs of `model`, by graph name (weights and state shared
    /// between them counted once).
    pub fn add(&mut self, model: &'static str, graphs: &[(&str, &Compiled)]) {
        let mut seen = HashSet::new();
        for (name, c) in graphs {
            let r = c.report();
            self.activations.push((format!("{model} {name}").trim_end().to_string(), r.planned_activation_bytes + r.io_bytes));
            for t in &c.graph().tensors {
                if t.bytes() > self.largest.1 {
                    self.largest = (format!("{model} tensor {}", t.name), t.bytes());
                }
                if !seen.insert(t.name.clone()) {
                    continue;
                }
                match t.kind {
                    Kind::Param => *self.weights.entry((model, t.dtype.to_string())).or_default() += t.bytes(),
                    Kind::State => self.state_bytes += t.bytes(),
                    _ => {}
                }
            }
        }
    }

    /// Adds the VAE's planned chunk; its weights are one figure, convs in `dtype`, biases and norms f32.
    pub fn add_vae(&mut self, m: &VaeMemory, one_frame: &VaeMemory, dtype: DType) {
        let dtypes = if dtype == DType::F32 { "f32".to_string() } else { format!("{dtype}+f32") };
        *self.weights.entry(("VAE", dtypes)).or_default() += m.weight_bytes;
        self.vae_cache_bytes = m.cache_bytes;
        let what = if m.bands > 1 { format!("VAE chunk in {} row bands", m.bands) } else { "VAE chunk".into() };
        self.activations.push((what, m.activation_bytes));
        // The decoder splits a chunk into calls that fit: one latent frame is what must.
        if one_frame.largest_tensor_bytes > self.largest.1 {
            self.largest = ("VAE tensor of a one-latent-frame chunk".into(), one_frame.largest_tensor_bytes);
        }
    }

    /// Checks the totals against `gpu`'s limits and records its allocator's figure.
    pub fn check(&mut self, gpu: &Gpu) {
        let limit = gpu.max_binding().min(gpu.limits.max_buffer_size);
        if self.largest.1 > limit {
            self.problems.push(format!("{} is {} bytes, over max_storage_buffer_binding_size {limit}", self.largest.0, self.largest.1));
        }
        self.allocated = gpu.memory().map(|m| m.allocated);
    }

    pub fn weight_bytes(&self) -> u64 {
        self.weights.values().sum()
    }

    /// Everything held at once: weights, state, caches and every compiled graph's activations.
    pub fn total(&self) -> u64 {
        self.weight_bytes() + self.state_bytes + self.vae_cache_bytes + self.activations.iter().map(|a| a.1).sum::<u64>()
    }
}
