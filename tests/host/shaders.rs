//! Tier 1: every shader variant the models use parses and validates with naga (no adapter needed).
#[test]
fn every_variant_validates() {
    let variants = runtime::kernels::all_variants();
    assert!(!variants.is_empty());
    let failures: Vec<String> = variants.iter().filter_map(|(label, wgsl)| runtime::shader::validate(label, wgsl).err()).collect();
    assert!(failures.is_empty(), "{} of {} variants fail naga validation:\n{}", failures.len(), variants.len(), failures.join("\n"));
}

/// Tier 1: each kernel family's WGSL `struct Params` is its Rust `#[repr(C)]` twin field for
/// field (names, byte offsets, size), read by naga, so a field added on one side only
/// fails here and not as garbage params on some adapter.
#[test]
fn params_structs_match_their_rust_twins() {
    use runtime::kernels::*;
    use runtime::{DType, Kernel, ParamsLayout};
    fn check<K: Kernel>(k: K) -> Option<String> {
        let label = k.to_string();
        let (members, size) = match runtime::shader::params_layout(&label, &k.wgsl()) {
            Ok(l) => l,
            Err(e) => return Some(e),
        };
        let rust: Vec<(String, usize)> = K::Params::FIELDS.iter().map(|&(n, o)| (n.to_string(), o)).collect();
        let rust_size = std::mem::size_of::<K::Params>();
        (members != rust || size != rust_size).then(|| format!("{label}: WGSL {members:?} ({size} B) vs Rust {rust:?} ({rust_size} B)"))
    }
    let norm = norm::Norm { stat: norm::Stat::Rms, scale: norm::Scale::Weight, silu: false, schedule: norm::Schedule::Serial };
    let failures: Vec<String> = [
        check(matmul::Matmul::new(DType::F32, true, matmul::Act::None, matmul::Residual::Gated)),
        check(attention::Attention::new(64, false)),
        check(attention::Attention::for_device(
            &runtime::Capabilities::baseline(runtime::DeviceKind::Gpu),
            64,
            true,
            DType::F32,
            DType::F32,
        )),
        check(attention::Attention { cache_f16: true, ..attention::Attention::new(64, false) }),
        check(ssm_scan::Ssm::Scan { f16: false }),
        check(ssm_scan::Ssm::DeltaPrepare { chunk: 16, f16: true }),
        check(norm),
        check(rope::Rope),
        check(peak::Peak { f16: true }),
        check(copy::Copy),
        check(copy::CopyF16),
        check(copy::Gather { bf16: false }),
        check(copy::Fill),
        check(conv3d::Conv3d::new(DType::F32, false, false, 16)),
        check(elementwise::Elementwise { op: elementwise::Op::Add }),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "params layouts differ:\n{}", failures.join("\n"));
}
