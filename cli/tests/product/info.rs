//! `videossm info`: whether the model fits each adapter, and what does not when it does not.
use super::support::*;

fn info(args: &[&str], max_binding: Option<&str>) -> String {
    let mut c = videossm();
    c.arg("info").args(args);
    if let Some(b) = max_binding {
        c.env("VIDEOSSM_MAX_BINDING", b);
    }
    String::from_utf8(ok(c).stdout).unwrap()
}

/// The embedded model fits lavapipe, with the figures the verdict rests on.
#[test]
fn the_embedded_model_fits() {
    let out = info(&[], None);
    for part in [
        "at 64x64, f32 weights",
        // The embedded model predates B.6: its config has no memory_type.
        "memory gated_linear (B.3)",
        "weights",
        "DiT f32",
        "KV window",
        "VAE caches",
        "DiT pass",
        "umT5",
        "VAE chunk",
        "wgpu reports no adapter memory size",
        "fits       yes",
    ] {
        assert!(out.contains(part), "{part:?} not in {out}");
    }
}

/// Bindings too small for the test model: a weight that cannot be split (the load fails
/// naming it); with the weights fitting, the VAE's activations, too large for one binding,
/// fit in row bands.
#[test]
fn a_small_binding_says_what_does_not_fit() {
    let model = model_dir().to_str().unwrap();
    let out = info(&["--model", model], Some("100000"));
    let want = "does not fit: storage binding decoder.upsamples.0.residual.2.weight: 110592 bytes requested, the adapter allows 100000";
    assert!(out.contains(want), "{out}");
    let out = info(&["--model", model], Some("120000"));
    for part in ["row bands", "fits       yes"] {
        assert!(out.contains(part), "{part:?} not in {out}");
    }
}
