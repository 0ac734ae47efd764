//! The generator at parity with the official code: every tensor of each dit-*
//! bundle's expected.safetensors within 1e-3 × its std (FORMAT.md), f32 path.
use runtime::{Gpu, GpuOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use videossm::replay::{replay, ReplayOptions};
use videossm_suite::{err_over_std, gpu, load_host, parity_dir};

fn check(name: &str, opts: ReplayOptions, tol: f64) {
    check_dir(gpu().clone(), name, &parity_dir(name), opts, tol);
}

fn check_dir(gpu: Arc<Gpu>, name: &str, dir: &Path, opts: ReplayOptions, tol: f64) {
    let expected = load_host(&dir.join("expected.safetensors"));
    let got = replay(gpu, dir, opts).unwrap();
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

/// The embedded model's generator (memory on, window 9, no sinks; tokens evicted from
/// chunk 3 on), replayed from the bundle `weights/train/check_parity.py` writes.
fn tiny_bundle() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/train/bundle-tiny/dit");
    assert!(dir.is_dir(), "{} is missing: write it with weights/train/check_parity.py --bundle-out", dir.display());
    dir
}

#[test]
fn dit_trained_tiny_model() {
    check_dir(gpu().clone(), "bundle-tiny/dit", &tiny_bundle(), ReplayOptions::default(), 1e-3);
}

#[test]
fn weights_wider_than_a_binding_run_as_column_blocks() {
    // The tiny model on a device that allows 256 KiB per binding: its `time_projection`
    // ([128, 768] f32, 384 KiB) is then stored and run as two column blocks, as
    // umT5-XXL's FFN is in f32 (or Wan-14B's in bf16) on a 128 MiB adapter.
    let cap = 256 << 10;
    assert_eq!(runtime::kernels::matmul::column_blocks(768, 128, 1, runtime::DType::F32, cap).unwrap().len(), 2);
    let small = Gpu::new(&GpuOptions { max_binding: Some(cap), ..GpuOptions::from_env() }).unwrap();
    assert_eq!(small.max_binding(), cap);
    check_dir(Arc::new(small), "bundle-tiny/dit with 256 KiB bindings", &tiny_bundle(), ReplayOptions::default(), 1e-3);
}
