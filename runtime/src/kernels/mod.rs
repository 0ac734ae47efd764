//! Kernel families: one WGSL file in `shaders/` and one module here each.
pub mod attention;
pub mod conv3d;
pub mod copy;
pub mod elementwise;
pub mod matmul;
pub mod norm;
pub mod peak;
pub mod rope;
pub mod ssm_scan;

/// Workgroup grid for `groups` workgroups in 1D, folded into 2D when it exceeds the
/// per-dimension limit (65535 on most adapters). Returns `[x, y, 1]`; shaders rebuild
/// the flat index with `folded_index` of `shaders/common.wgsl` (from `num_workgroups`,
/// so the fold is free to change), and return early past the end.
pub fn grid_1d(groups: u32) -> [u32; 3] {
    const MAX: u32 = 65535;
    if groups <= MAX {
        [groups.max(1), 1, 1]
    } else {
        let y = groups.div_ceil(MAX);
        [groups.div_ceil(y), y, 1]
    }
}

/// GELU, tanh form (Wan's FFN, umT5's gated FFN), in f64 for the CPU references;
/// `gelu_tanh` in `shaders/common.wgsl` is the kernels' form of it.
pub fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
}

/// Every shader variant the models use, for the naga validation test (no adapter needed).
/// Each family lists its own in `variants()`.
pub fn all_variants() -> Vec<(String, String)> {
    [
        elementwise::variants(),
        matmul::variants(),
        attention::variants(),
        ssm_scan::variants(),
        norm::variants(),
        rope::variants(),
        copy::variants(),
        conv3d::variants(),
        peak::variants(),
    ]
    .concat()
}
