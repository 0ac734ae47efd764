//! The model graphs: the causal DiT generator with its hybrid memory, the umT5
//! text encoder and the Wan VAE decoder.
pub mod dit;
pub mod linear;
pub mod t5;
pub mod vae;

/// The dtype of a session's caches: the DiT's attention caches (`cache_k`, `cache_v`,
/// `ctx_k`, `ctx_v` and the memory keys `k̂`, which share the value cache's slots and
/// scans) and the VAE's frame caches. f16 halves the state, and the K/V traffic of
/// every attention call; it is used only where the adapter has `shader-f16` (the
/// kernels bind `array<f16>`). By default (`opts.kv_f16`
/// unset) f16 when the weights are 16-bit — they already round K and V more coarsely
/// (bf16 to 2⁻⁹), and f16 caches changed the parity bundles' flow by ≤ 9.6e-4 × std
/// there and the trained tiny model's by ≤ 1.4e-2, within issue 26's 2e-2 — and f32
/// for f32 weights, the reference path held to 1e-3 × std, where f16 caches would move
/// the trained tiny model by 6.9e-3 × std (docs/gpu-memory.md has the table).
pub fn cache_dtype(caps: &runtime::Capabilities, weights: runtime::DType, opts: &crate::CompileOptions) -> runtime::DType {
    match opts.kv_f16.unwrap_or(weights != runtime::DType::F32) && caps.f16 {
        true => runtime::DType::F16,
        false => runtime::DType::F32,
    }
}
