//! Tier 1: every shader variant the models use parses and validates with naga, and
//! translates through naga's SPIR-V, MSL, HLSL and GLSL backends as wgpu does on Vulkan,
//! Metal, DX12 and GL — wherever the backend can run what the variant needs. The
//! adapter-driven choosers never pick a variant for a backend that cannot run it.
//! No adapter needed.
use naga::valid::{Capabilities as Caps, ModuleInfo, ValidationFlags, Validator};
use runtime::kernels::{attention, conv3d, copy, elementwise, matmul, norm, peak, rope, ssm_scan};
use runtime::{Capabilities, CoopMatrix, DType, DeviceKind, Kernel};
use std::collections::HashMap;
use std::sync::OnceLock;

#[test]
fn every_variant_validates() {
    let variants = runtime::kernels::all_variants();
    assert!(!variants.is_empty());
    let failures: Vec<String> = variants.iter().filter_map(|(label, wgsl)| runtime::shader::validate(label, wgsl).err()).collect();
    assert!(failures.is_empty(), "{} of {} variants fail naga validation:\n{}", failures.len(), variants.len(), failures.join("\n"));
}

/// The optional shader capabilities a kernel variant may use; `Capabilities` records
/// whether the device was opened with each.
const OPTIONAL: [Caps; 3] = [Caps::SHADER_FLOAT16, Caps::SUBGROUP, Caps::COOPERATIVE_MATRIX];

fn optional() -> Caps {
    OPTIONAL.into_iter().fold(Caps::empty(), |a, c| a | c)
}

/// What a device opened with `caps` offers of [`OPTIONAL`].
fn offered(caps: &Capabilities) -> Caps {
    let mut c = Caps::empty();
    c.set(Caps::SHADER_FLOAT16, caps.f16);
    c.set(Caps::SUBGROUP, caps.subgroups);
    c.set(Caps::COOPERATIVE_MATRIX, caps.coop_matrix.is_some());
    c
}

fn parse(label: &str, wgsl: &str) -> naga::Module {
    naga::front::wgsl::parse_str(wgsl).unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(wgsl)))
}

fn validate(module: &naga::Module, caps: Caps) -> Result<ModuleInfo, String> {
    Validator::new(ValidationFlags::all(), caps).validate(module).map_err(|e| format!("{e:?}"))
}

/// The optional capabilities `module` needs, as naga's validator judges them: each one
/// without which it no longer validates (a variant that fails outright fails
/// `every_variant_validates`).
fn requirements(module: &naga::Module) -> Caps {
    OPTIONAL.into_iter().filter(|&c| validate(module, Caps::all() - c).is_err()).fold(Caps::empty(), |a, c| a | c)
}

/// Label → requirements of every variant, computed once for the tests of this file.
fn all_requirements() -> &'static HashMap<String, Caps> {
    static REQS: OnceLock<HashMap<String, Caps>> = OnceLock::new();
    REQS.get_or_init(|| runtime::kernels::all_variants().iter().map(|(l, w)| (l.clone(), requirements(&parse(l, w)))).collect())
}

/// A wgpu backend and the naga backend that translates for it.
struct Target {
    name: &'static str,
    /// What wgpu can offer on this backend of [`OPTIONAL`]: DX12 has no cooperative
    /// matrices (nor does naga's HLSL writer), GL neither f16 nor subgroups.
    features: Caps,
    /// naga's own list of what the writer supports.
    supported: Caps,
    emit: fn(&naga::Module, &ModuleInfo, Caps) -> Result<(), String>,
}

impl Target {
    /// The validator's capabilities on this backend: the writer's, less the optional
    /// ones wgpu does not offer here.
    fn caps(&self) -> Caps {
        self.supported - (optional() - self.features)
    }
}

fn targets() -> [Target; 5] {
    use naga::back::{glsl, hlsl, msl, spv};
    let all = optional();
    [
        Target { name: "vulkan (spv)", features: all, supported: spv::supported_capabilities(), emit: emit_spv },
        Target { name: "metal (msl)", features: all, supported: msl::supported_capabilities(), emit: emit_msl },
        Target {
            name: "dx12 (hlsl)",
            features: Caps::SHADER_FLOAT16 | Caps::SUBGROUP,
            supported: hlsl::supported_capabilities(),
            emit: emit_hlsl,
        },
        Target { name: "gl (glsl es 3.10)", features: Caps::empty(), supported: glsl::supported_capabilities(), emit: emit_glsl_es },
        Target { name: "gl (glsl 4.30)", features: Caps::empty(), supported: glsl::supported_capabilities(), emit: emit_glsl_core },
    ]
}

/// As wgpu's Vulkan backend: the SPIR-V capabilities it declares always, and those of the
/// features in `features`; SPIR-V 1.3, the version of Vulkan 1.1 (subgroups).
fn emit_spv(module: &naga::Module, info: &ModuleInfo, features: Caps) -> Result<(), String> {
    use naga::back::spv::{self, Capability as C};
    let mut caps =
        vec![C::Shader, C::Matrix, C::Sampled1D, C::Image1D, C::ImageQuery, C::DerivativeControl, C::StorageImageExtendedFormats];
    if features.contains(Caps::SHADER_FLOAT16) {
        caps.push(C::Float16);
    }
    if features.contains(Caps::SUBGROUP) {
        caps.extend([
            C::GroupNonUniform,
            C::GroupNonUniformVote,
            C::GroupNonUniformArithmetic,
            C::GroupNonUniformBallot,
            C::GroupNonUniformShuffle,
            C::GroupNonUniformShuffleRelative,
            C::GroupNonUniformQuad,
        ]);
    }
    if features.contains(Caps::COOPERATIVE_MATRIX) {
        caps.extend([C::CooperativeMatrixKHR, C::VulkanMemoryModel]);
    }
    let options = spv::Options { lang_version: (1, 3), capabilities: Some(caps.into_iter().collect()), ..Default::default() };
    spv::write_vec(module, info, &options, None).map(drop).map_err(|e| e.to_string())
}

/// MSL 2.3, the lowest wgpu offers cooperative matrices (simdgroup matrices) at.
fn emit_msl(module: &naga::Module, info: &ModuleInfo, _: Caps) -> Result<(), String> {
    use naga::back::msl;
    let options = msl::Options { lang_version: (2, 3), ..Default::default() };
    msl::write_string(module, info, &options, &msl::PipelineOptions::default()).map(drop).map_err(|e| e.to_string())
}

/// Shader model 6.2, the lowest with 16-bit types (wave intrinsics need 6.0).
fn emit_hlsl(module: &naga::Module, info: &ModuleInfo, _: Caps) -> Result<(), String> {
    use naga::back::hlsl;
    let options = hlsl::Options { shader_model: hlsl::ShaderModel::V6_2, ..Default::default() };
    let mut out = String::new();
    let mut writer = hlsl::Writer::new(&mut out, &options, &hlsl::PipelineOptions { entry_point: None });
    writer.write(module, info, None).map(drop).map_err(|e| e.to_string())
}

/// GLSL ES 3.10, the oldest with compute shaders (WebGL and GLES 3.0 have none).
fn emit_glsl_es(module: &naga::Module, info: &ModuleInfo, _: Caps) -> Result<(), String> {
    emit_glsl(module, info, naga::back::glsl::Version::Embedded { version: 310, is_webgl: false })
}

/// Desktop GLSL 4.30, where compute shaders begin in core GL.
fn emit_glsl_core(module: &naga::Module, info: &ModuleInfo, _: Caps) -> Result<(), String> {
    emit_glsl(module, info, naga::back::glsl::Version::Desktop(430))
}

/// As wgpu's GL backend: bindings numbered per kind (uniform buffers, storage buffers) in
/// binding order, all workgroup memory zeroed.
fn emit_glsl(module: &naga::Module, info: &ModuleInfo, version: naga::back::glsl::Version) -> Result<(), String> {
    use naga::back::glsl;
    let mut binding_map = glsl::BindingMap::default();
    let (mut uniform, mut storage) = (0u8, 0u8);
    let mut bound: Vec<_> = module.global_variables.iter().filter_map(|(_, v)| v.binding.map(|b| (b, v.space))).collect();
    bound.sort_by_key(|(b, _)| (b.group, b.binding));
    for (b, space) in bound {
        let slot = if space == naga::AddressSpace::Uniform { &mut uniform } else { &mut storage };
        binding_map.insert(b, *slot);
        *slot += 1;
    }
    let options = glsl::Options { version, binding_map, zero_initialize_workgroup_memory: true, ..Default::default() };
    let pipeline = glsl::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: "main".into(), multiview: None };
    let mut out = String::new();
    let policies = naga::proc::BoundsCheckPolicies::default();
    glsl::Writer::new(&mut out, module, info, &options, &pipeline, policies)
        .and_then(|mut w| w.write())
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
fn every_variant_translates_wherever_its_needs_are_met() {
    let variants = runtime::kernels::all_variants();
    let reqs = all_requirements();
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for t in targets() {
        let caps = t.caps();
        let (mut emitted, mut skipped) = (0, HashMap::<String, usize>::new());
        for (label, wgsl) in &variants {
            let need = reqs[label];
            if !t.features.contains(need) {
                *skipped.entry(format!("{need:?}")).or_default() += 1;
                continue;
            }
            let module = parse(label, wgsl);
            match validate(&module, caps).and_then(|info| (t.emit)(&module, &info, t.features)) {
                Ok(()) => emitted += 1,
                Err(e) => failures.push(format!("{} {label}: {e}", t.name)),
            }
        }
        report.push(format!("{}: {emitted} emitted, not run there: {skipped:?}", t.name));
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{} translations fail:\n{}", failures.len(), failures.join("\n"));
}

/// Adapters a backend may have: each subset of the optional features wgpu offers there,
/// as a GPU and as a software adapter, with WebGPU's 16 KiB of workgroup memory or more,
/// and the subgroup sizes and cooperative-matrix sizes adapters report.
fn adapters(t: &Target) -> Vec<Capabilities> {
    let mut out = Vec::new();
    for subset in 0..1u32 << OPTIONAL.len() {
        let on = |i: usize| subset & (1 << i) != 0 && t.features.contains(OPTIONAL[i]);
        let (f16, subgroups, coop) = (on(0), on(1), on(2));
        for device_type in [DeviceKind::Gpu, DeviceKind::Cpu] {
            for workgroup_storage in [16384, 32768, 65536] {
                for (subgroup_min, subgroup_max) in [(32, 32), (32, 64), (4, 64), (8, 16), (8, 128)] {
                    for size in [8, 16] {
                        out.push(Capabilities {
                            f16,
                            subgroups,
                            subgroup_min: if subgroups { subgroup_min } else { 0 },
                            subgroup_max: if subgroups { subgroup_max } else { 0 },
                            workgroup_storage,
                            coop_matrix: coop.then_some(CoopMatrix { size }),
                            ..Capabilities::baseline(device_type)
                        });
                    }
                }
            }
        }
    }
    out.dedup();
    out
}

/// Every kernel the adapter-driven choosers return for `caps` over the models' shapes
/// and head dims.
fn chosen(caps: &Capabilities) -> Vec<String> {
    use matmul::{Act, Matmul, Params, Residual};
    let mut out = Vec::new();
    let shapes = [
        (1, 64, 64, 1),
        (64, 64, 30, 1),
        (100, 256, 256, 1),
        (512, 4096, 4096, 1),
        (4680, 1536, 1536, 1),
        (1560, 8960, 1536, 1),
        (1, 128, 128, 12),
    ];
    for (m, n, k, batch) in shapes {
        let p = Params { batch, ..Params::dense(m, n, k) };
        for w in [DType::F32, DType::F16, DType::BF16] {
            for bias in [false, true] {
                for act in [Act::None, Act::Gelu, Act::Silu] {
                    for res in [Residual::None, Residual::Add, Residual::Gated] {
                        out.push(Matmul::for_device(caps, w, bias, act, res, &p).to_string());
                    }
                }
            }
        }
    }
    for stat in [norm::Stat::Rms, norm::Stat::Layer, norm::Stat::L2] {
        for scale in [norm::Scale::None, norm::Scale::Weight, norm::Scale::Affine, norm::Scale::Modulated] {
            for silu in [false, true] {
                out.push(norm::Norm::for_device(caps, stat, scale, silu).to_string());
            }
        }
    }
    out.push(norm::Norm::softmax(caps).to_string());
    // The caches' dtype as the DiT session chooses it for each weight dtype.
    let kv = |precision| graph::models::cache_dtype(caps, precision, &graph::CompileOptions::default());
    for d in attention::HEAD_DIMS {
        for bias in [false, true] {
            for precision in [DType::F32, DType::F16, DType::BF16] {
                out.push(attention::Attention::for_device(caps, d as usize, bias, precision, kv(precision)).to_string());
            }
        }
    }
    out.extend([false, true].map(|delta| ssm_scan::Ssm::read_for(caps, delta).to_string()));
    for f16 in [DType::F32, DType::BF16].map(|w| kv(w) == DType::F16) {
        if f16 {
            // Writes into f16 caches, and the VAE's halo and shift copies out of them.
            out.extend([(false, true), (true, false)].map(|(src_f16, dst_f16)| copy::Copy { src_f16, dst_f16 }.to_string()));
        }
        out.push(ssm_scan::Ssm::Scan { f16 }.to_string());
        match ssm_scan::DeltaScan::for_device(caps) {
            ssm_scan::DeltaScan::Chunked(chunk) => {
                out.extend([ssm_scan::Ssm::DeltaPrepare { chunk, f16 }, ssm_scan::Ssm::DeltaUpdate { chunk }].map(|k| k.to_string()))
            }
            ssm_scan::DeltaScan::Step => out.push(ssm_scan::Ssm::DeltaStep { f16 }.to_string()),
        }
    }
    // The VAE's convolutions, by output width, reading caches of the dtype chosen for their weights.
    for cout in [3, 96, 384] {
        for w in [DType::F32, DType::BF16] {
            let cache_f16 = kv(w) == DType::F16;
            out.push(conv3d::Conv3d { cache_f16, ..conv3d::Conv3d::for_device(caps, w, false, false, cout) }.to_string());
        }
    }
    // `bench --full` probes f16 FMA throughput where the device has f16 (cli/src/bench_full.rs).
    out.push(peak::Peak { f16: caps.f16 }.to_string());
    out
}

#[test]
fn choosers_pick_only_what_the_backend_runs() {
    let reqs = all_requirements();
    let mut failures = Vec::new();
    for t in targets() {
        for caps in adapters(&t) {
            let have = offered(&caps);
            for label in chosen(&caps) {
                match reqs.get(&label) {
                    None => failures.push(format!("{}: {label} chosen for {caps:?} is not among all_variants()", t.name)),
                    Some(need) if !have.contains(*need) => {
                        failures.push(format!("{}: {label} needs {need:?}, chosen for {caps:?}", t.name))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    failures.dedup();
    assert!(failures.is_empty(), "{} bad choices:\n{}", failures.len(), failures.join("\n"));
}

/// The families without an adapter-driven choice run everywhere, so they need nothing optional.
#[test]
fn families_without_a_chooser_need_no_optional_capability() {
    let fixed = [rope::variants(), copy::variants(), conv3d::variants(), elementwise::variants()].concat();
    // Copies and convs with f16 operands touch only f16 caches, which the session's
    // cache_dtype chooses (checked with the choosers above).
    let needy: Vec<String> = fixed
        .iter()
        .filter(|(l, _)| !l.contains("f16_to") && !l.contains("to_f16") && !l.ends_with("cachef16"))
        .filter_map(|(l, w)| {
            let need = requirements(&parse(l, w));
            (!need.is_empty()).then(|| format!("{l}: {need:?}"))
        })
        .collect();
    assert!(needy.is_empty(), "variants without a chooser need optional capabilities:\n{}", needy.join("\n"));
}

/// The configuration a device is opened with: the largest square f16 × f16 → f32 one (as
/// Metal and the Vulkan drivers of NVIDIA and AMD list them), none without.
#[test]
fn coop_matrix_configuration_is_the_largest_square_mixed_one() {
    use wgpu::{CooperativeMatrixProperties as P, CooperativeScalarType as T};
    let cfg = |m: u32, n: u32, k: u32, ab: T, cr: T| P {
        m_size: m,
        n_size: n,
        k_size: k,
        ab_type: ab,
        cr_type: cr,
        saturating_accumulation: false,
    };
    let metal = [cfg(8, 8, 8, T::F32, T::F32), cfg(8, 8, 8, T::F16, T::F16), cfg(8, 8, 8, T::F16, T::F32)];
    assert_eq!(CoopMatrix::best(&metal), Some(CoopMatrix { size: 8 }));
    let nvidia =
        [cfg(16, 16, 16, T::F16, T::F16), cfg(16, 8, 16, T::F16, T::F32), cfg(16, 16, 16, T::F16, T::F32), cfg(8, 8, 8, T::F16, T::F32)];
    assert_eq!(CoopMatrix::best(&nvidia), Some(CoopMatrix { size: 16 }));
    assert_eq!(CoopMatrix::best(&[cfg(16, 16, 16, T::F16, T::F16), cfg(8, 8, 8, T::F32, T::F32)]), None);
}

/// Tier 1: each kernel family's WGSL `struct Params` is its Rust `#[repr(C)]` twin field for
/// field (names, byte offsets, size), read by naga, so a field added on one side only
/// fails here and not as garbage params on some adapter.
#[test]
fn params_structs_match_their_rust_twins() {
    use runtime::ParamsLayout;
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
        check(attention::Attention::for_device(&Capabilities::baseline(DeviceKind::Gpu), 64, true, DType::F32, DType::F32)),
        check(attention::Attention { cache_f16: true, ..attention::Attention::new(64, false) }),
        check(ssm_scan::Ssm::Scan { f16: false }),
        check(ssm_scan::Ssm::DeltaPrepare { chunk: 16, f16: true }),
        check(norm),
        check(rope::Rope),
        check(peak::Peak { f16: true }),
        check(copy::Copy::F32),
        check(copy::Copy { src_f16: false, dst_f16: true }),
        check(copy::Fill),
        check(conv3d::Conv3d::new(DType::F32, false, false, 16)),
        check(elementwise::Elementwise { op: elementwise::Op::Add }),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "params layouts differ:\n{}", failures.join("\n"));
}
