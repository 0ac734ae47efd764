//! The generator at parity with the official code: every tensor of each dit-*
//! bundle's expected.safetensors within 1e-3 × its std (FORMAT.md), f32 path.
use videossm::replay::{replay, ReplayOptions};
use videossm_suite::{err_over_std, gpu, load_host, parity_dir};

fn check(name: &str, opts: ReplayOptions, tol: f64) {
    let dir = parity_dir(name);
    let expected = load_host(&dir.join("expected.safetensors"));
    let got = replay(gpu().clone(), &dir, opts).unwrap();
    let mut worst = ("", 0.0f64);
    for (key, (shape, want)) in &expected {
        let (gshape, g) = got.get(key).unwrap_or_else(|| panic!("{name}: replay did not produce {key}"));
        assert_eq!(gshape, shape, "{name}: {key} shape");
        let e = err_over_std(g, want);
        if e > worst.1 {
            worst = (key, e);
        }
        assert!(e <= tol, "{name}: {key} max|err| = {e:.3e} × std (allowed {tol:e})");
    }
    println!("{name}: {} tensors, worst {} at {:.3e} × std", expected.len(), worst.0, worst.1);
}

#[test]
fn dit_small_full_cache() {
    check("dit-small", ReplayOptions::default(), 1e-3);
}

#[test]
fn dit_window_evicting_with_sinks() {
    check("dit-window", ReplayOptions::default(), 1e-3);
}

#[test]
fn dit_memory_hybrid() {
    check("dit-memory", ReplayOptions::default(), 1e-3);
}

#[test]
fn dit_memory_with_f16_weights() {
    // f16 weights (f32 activations and accumulation): 2e-2 × std, as issue 4 asks.
    check("dit-memory", ReplayOptions { wdtype: runtime::DType::F16, memory: true }, 2e-2);
}

#[test]
fn dit_window_with_bf16_weights() {
    // bf16 keeps 8 mantissa bits (f16 has 11): the same budget holds at these widths.
    check("dit-window", ReplayOptions { wdtype: runtime::DType::BF16, memory: true }, 2e-2);
}

#[test]
fn weights_wider_than_a_binding_run_as_column_blocks() {
    // The shipped tiny model on a device that allows 256 KiB per binding: its
    // `time_projection` ([128, 768] f32, 384 KiB) is then stored and run as two column
    // blocks, as umT5-XXL's FFN is in f32 (or Wan-14B's in bf16) on a 128 MiB adapter.
    let cap = 256 << 10;
    assert_eq!(runtime::kernels::matmul::column_blocks(768, 128, 1, runtime::DType::F32, cap).unwrap().len(), 2);
    let small = runtime::Gpu::new(&runtime::GpuOptions { max_binding: Some(cap), ..runtime::GpuOptions::from_env() }).unwrap();
    assert_eq!(small.max_binding(), cap);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/train/bundle-tiny/dit");
    let expected = load_host(&dir.join("expected.safetensors"));
    let got = replay(std::sync::Arc::new(small), &dir, ReplayOptions::default()).unwrap();
    for (key, (_, want)) in &expected {
        let e = err_over_std(&got[key].1, want);
        assert!(e <= 1e-3, "bundle-tiny with 256 KiB bindings: {key} max|err| = {e:.3e} × std");
    }
}
