//! What a model needs of an adapter at its configured size, read from one session
//! whose graphs are all compiled (the DiT's, the VAE's chunk graphs) after one prompt
//! was encoded: weight bytes by model and dtype, the session state (KV window, sinks,
//! SSM state), the VAE caches, the activation buffers every graph shares, what encoding
//! a prompt adds for a moment, and the largest single tensor, which must fit one
//! storage binding. Where the device allocator reports, the peak is its figure.
use graph::executor::Compiled;
use graph::ir::Kind;
use graph::models::t5::EncodeStats;
use graph::models::vae::session::VaeMemory;
use runtime::{DType, Gpu};
use std::collections::{BTreeMap, HashSet};

const GIB: u64 = 1 << 30;

/// The device budgets `info` checks the peak against, in GiB: common card sizes.
pub const BUDGETS_GIB: [u64; 4] = [8, 12, 16, 24];

/// Device bytes of one session, by kind, with the limits they must respect.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    /// Weight bytes by model (`DiT`, `VAE`) and device dtype.
    pub weights: BTreeMap<(&'static str, String), u64>,
    /// KV window, sinks, cross-attention cache and SSM state.
    pub state_bytes: u64,
    pub vae_cache_bytes: u64,
    /// Each graph's plan on its own (inputs and outputs included); their activations
    /// share the device's buffers ([`Needs::shared_activation_bytes`]).
    pub activations: Vec<(String, u64)>,
    /// The activation buffers every graph shares (`runtime::pool`), as allocated.
    pub shared_activation_bytes: u64,
    /// The largest single tensor: (what, bytes).
    pub largest: (String, u64),
    /// What the device allocator holds with the session compiled, where it says.
    pub allocated: Option<u64>,
    /// Why the model does not fit, if it does not (empty: it fits).
    pub problems: Vec<String>,
    /// The umT5 encoding of the last prompt, streamed one linear at a time: what it adds to the device for a moment.
    pub text: EncodeStats,
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

    /// Checks the largest tensor against `gpu`'s limits and records its allocator's figures.
    pub fn check(&mut self, gpu: &Gpu) {
        let limit = gpu.max_binding().min(gpu.limits.max_buffer_size);
        if self.largest.1 > limit {
            self.problems.push(format!("{} is {} bytes, over max_storage_buffer_binding_size {limit}", self.largest.0, self.largest.1));
        }
        self.shared_activation_bytes = gpu.pooled_bytes();
        self.allocated = gpu.memory().map(|m| m.allocated);
    }

    pub fn weight_bytes(&self) -> u64 {
        self.weights.values().sum()
    }

    /// What encoding a prompt adds while it runs: the allocator's growth where measured,
    /// else the largest piece's weights and plan (one linear with the ops around it).
    pub fn text_bytes(&self) -> u64 {
        self.text.allocated_bytes.unwrap_or(self.text.piece_bytes)
    }

    /// The parts of the peak, largest first: weights by model, session state, VAE
    /// caches, shared activations, the prompt encoding, and (where the allocator
    /// reports) the rest it holds: graphs' inputs and outputs, their parameters.
    pub fn parts(&self) -> Vec<(String, u64)> {
        let mut parts: Vec<(String, u64)> = self.weights.iter().map(|((m, d), b)| (format!("{m} weights ({d})"), *b)).collect();
        parts.push(("DiT state (KV window and sinks, prompt K/V, SSM memory)".into(), self.state_bytes));
        parts.push(("VAE caches".into(), self.vae_cache_bytes));
        parts.push(("activations (shared by every graph)".into(), self.shared_activation_bytes));
        // What the allocator holds beyond the parts above (the prompt encoding comes on top).
        if let Some(a) = self.allocated {
            let counted: u64 = parts.iter().map(|p| p.1).sum();
            parts.push(("other (graph inputs and outputs, per-graph parameters)".into(), a.saturating_sub(counted)));
        }
        parts.push((format!("umT5 prompt encoding (one linear at a time, {} tokens)", self.text.tokens), self.text_bytes()));
        parts.sort_by_key(|p| std::cmp::Reverse(p.1));
        parts
    }

    /// The most device memory the session holds at once: everything allocated, plus a
    /// prompt being encoded (a prompt switch happens with all of it in place).
    pub fn peak(&self) -> u64 {
        self.parts().iter().map(|p| p.1).sum()
    }

    /// Why `budget` bytes are not enough, naming the largest part and what would shrink it.
    pub fn over_budget(&self, budget: u64) -> Option<String> {
        let peak = self.peak();
        if peak <= budget {
            return None;
        }
        let parts = self.parts();
        let (what, bytes) = &parts[0];
        let gib = |b: u64| b as f64 / GIB as f64;
        let hint = if what.contains("weights (f32") {
            "--dtype bf16 halves the weights"
        } else if what.contains("KV window") {
            "a shorter --window or a smaller --size shrinks it"
        } else {
            "a smaller --size shrinks it"
        };
        Some(format!(
            "needs {:.2} GiB at its peak, over the {:.2} GiB budget (--max-memory): the largest part is {what}, {:.2} GiB; {hint}",
            gib(peak),
            gib(budget),
            gib(*bytes)
        ))
    }
}

/// Parses a memory size: bytes, or a number with K, M, G (binary units; `8G` = 8 GiB;
/// `KB`/`KiB` and the like are read the same).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("{s:?}: expected a size such as 8G, 512M or 6000000000"))?;
    let scale = match unit.trim().to_ascii_uppercase().trim_end_matches('B').trim_end_matches('I') {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => GIB,
        "T" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use K, M, G or T (binary)")),
    };
    let bytes = value * scale as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{s:?}: must be at least one byte"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("8GiB"), Ok(8 << 30));
        assert_eq!(parse_size("1.5 GB"), Ok(3 << 29));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("8Q").unwrap_err().contains("unknown unit"));
        assert!(parse_size("G").unwrap_err().contains("expected a size"));
        assert!(parse_size("0").unwrap_err().contains("at least one byte"));
    }

    #[test]
    fn the_peak_is_allocated_plus_the_prompt_encoding_and_names_the_largest_part() {
        let mut n = Needs { state_bytes: 3 * GIB, vae_cache_bytes: GIB, shared_activation_bytes: GIB / 2, ..Needs::default() };
        n.weights.insert(("DiT", "f32".into()), 5 * GIB);
        n.text = EncodeStats { tokens: 7, piece_bytes: GIB, allocated_bytes: Some(GIB / 4), ..EncodeStats::default() };
        // Allocated: the parts above plus half a GiB of inputs and outputs.
        n.allocated = Some(10 * GIB);
        assert_eq!(n.peak(), 10 * GIB + GIB / 4);
        assert_eq!(n.parts()[0], ("DiT weights (f32)".to_string(), 5 * GIB));
        assert_eq!(n.parts().iter().find(|p| p.0.starts_with("other")).map(|p| p.1), Some(GIB / 2));
        let e = n.over_budget(8 * GIB).unwrap();
        assert!(e.contains("10.25 GiB") && e.contains("DiT weights (f32)") && e.contains("--dtype bf16"), "{e}");
        assert_eq!(n.over_budget(12 * GIB), None);
        // Without the allocator's figures the parts are summed, the encoding as planned.
        n.allocated = None;
        n.text.allocated_bytes = None;
        assert_eq!(n.peak(), 5 * GIB + 3 * GIB + GIB + GIB / 2 + GIB);
    }
}
