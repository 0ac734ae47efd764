//! The f16 KV cache is chosen only where the adapter has shader-f16 (GL has not), and by
//! default only for 16-bit weights; ops refuse f16 caches on an adapter without f16.
use graph::models::cache_dtype;
use graph::{Builder, CompileOptions};
use runtime::kernels::copy;
use runtime::{Capabilities, DType, DeviceKind};

fn opts(kv_f16: Option<bool>) -> CompileOptions {
    CompileOptions { kv_f16, ..Default::default() }
}

#[test]
fn f16_caches_only_with_shader_f16_and_by_default_only_for_16_bit_weights() {
    let gl = Capabilities::baseline(DeviceKind::Gpu);
    assert!(!gl.f16);
    let f16 = Capabilities { f16: true, ..gl };
    for weights in [DType::F32, DType::F16, DType::BF16] {
        for force in [None, Some(false), Some(true)] {
            assert_eq!(cache_dtype(&gl, weights, &opts(force)), DType::F32, "no shader-f16: {weights} weights, kv_f16 {force:?}");
        }
        assert_eq!(cache_dtype(&f16, weights, &opts(Some(true))), DType::F16);
        assert_eq!(cache_dtype(&f16, weights, &opts(Some(false))), DType::F32);
        let default = if weights == DType::F32 { DType::F32 } else { DType::F16 };
        assert_eq!(cache_dtype(&f16, weights, &opts(None)), default, "{weights} weights by default");
    }
}

#[test]
fn ops_refuse_f16_caches_without_shader_f16() {
    for has_f16 in [false, true] {
        let mut g = Builder::new(Capabilities { f16: has_f16, ..Capabilities::baseline(DeviceKind::Gpu) });
        let x = g.input("k", &[4, 16], DType::F32);
        let cache = g.planned_state("cache_k", &[8, 16], DType::F16);
        let v = g.planned_state("cache_v", &[8, 16], DType::F16);
        let ranges = g.input("ranges", &[1, 2], DType::U32);
        let write = g.copy_into("write", x, cache, &copy::Params::rows(4, 16, 0, 0));
        let attn = g.attention("attn", x, cache, v, ranges, 2, 0.25, DType::BF16);
        assert_eq!((write.is_ok(), attn.is_ok()), (has_f16, has_f16), "shader-f16 {has_f16}");
        let labels: Vec<String> = g.graph().nodes.iter().map(|n| n.kernel.label()).collect();
        if has_f16 {
            assert_eq!(labels[0], "copy_strided_f32_to_f16");
            assert!(labels[1].ends_with("_kvf16"), "{labels:?}");
        }
        // Mixed K/V dtypes are refused everywhere.
        let k32 = g.planned_state("k32", &[8, 16], DType::F32);
        assert!(g.attention("mixed", x, k32, v, ranges, 2, 0.25, DType::BF16).is_err());
    }
}
