//! Shared support for the test suite and the benches: one device per process,
//! seeded random data, tolerance checks that report the worst element, and the
//! location of the parity bundles.
pub mod reference;
pub mod t5;

use runtime::{Gpu, GpuOptions};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// The process-wide device. A machine without an adapter fails loudly: CI always
/// has lavapipe, so kernel and model tests never skip.
pub fn gpu() -> &'static Arc<Gpu> {
    static GPU: OnceLock<Arc<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new(&GpuOptions::from_env()) {
        Ok(g) => Arc::new(g),
        Err(e) => panic!("these tests need a GPU adapter (lavapipe is enough: `apt-get install mesa-vulkan-drivers`): {e}"),
    })
}

pub use videossm::synthetic::Rng;

/// Asserts |got − want| ≤ atol + rtol·|want| everywhere, naming the worst index.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs reference {}", got.len(), want.len());
    let mut worst = (0usize, 0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let excess = ((g as f64 - w as f64).abs() - rtol * (w as f64).abs()) / atol;
        if !g.is_finite() || excess > worst.1 {
            worst = (i, if g.is_finite() { excess } else { f64::INFINITY });
        }
    }
    let (i, excess) = worst;
    assert!(
        excess <= 1.0,
        "{what}: element {i} is {} but the reference says {} (|err| = {:e}, allowed {:e} + {:e}·|ref|)",
        got[i],
        want[i],
        (got[i] as f64 - want[i] as f64).abs(),
        atol,
        rtol
    );
}

/// Max |err| / std(want): the parity measure of `../shared/parity/FORMAT.md`.
pub fn err_over_std(got: &[f32], want: &[f32]) -> f64 {
    let n = want.len() as f64;
    let mean = want.iter().map(|&v| v as f64).sum::<f64>() / n;
    let std = (want.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let max = got.iter().zip(want).map(|(&g, &w)| (g as f64 - w as f64).abs()).fold(0.0, f64::max);
    max / std
}

/// `../shared/parity/NAME` beside the checkout; panics with instructions when missing.
pub fn parity_dir(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/parity");
    let dir = root.join(name);
    assert!(
        dir.is_dir(),
        "parity bundle {} is missing: the tests expect the project's shared/ folder beside the checkout (../shared/parity)",
        dir.display()
    );
    dir
}

/// Every tensor of a safetensors file as (shape, f32 values), for references that
/// must not share the runtime's loader. Integer tensors are converted to f32.
pub fn load_host(path: &std::path::Path) -> std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    use safetensors::Dtype;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    st.tensors()
        .into_iter()
        .map(|(name, t)| {
            let d = t.data();
            let v: Vec<f32> = match t.dtype() {
                Dtype::F32 => d.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
                Dtype::F16 => d.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
                Dtype::BF16 => d.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
                Dtype::I64 => d.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32).collect(),
                other => panic!("{}: tensor {name} has dtype {other:?}", path.display()),
            };
            (name, (t.shape().to_vec(), v))
        })
        .collect()
}

pub use videossm::synthetic::random_vae_checkpoint;
