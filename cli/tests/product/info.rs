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

/// On this machine's whole adapter list (all Vulkan drivers probed, GL included, no
/// display): `info` reports every adapter it lists and exits 0, and neither it nor
/// `generate` prints the display probes' `XDG_RUNTIME_DIR` noise.
#[test]
fn info_reports_every_listed_adapter_quietly() {
    let headless = |mut c: std::process::Command| {
        for k in ["VK_ICD_FILENAMES", "VIDEOSSM_BACKEND", "VIDEOSSM_ADAPTER", "XDG_RUNTIME_DIR", "WAYLAND_DISPLAY", "DISPLAY", "RUST_LOG"] {
            c.env_remove(k);
        }
        c
    };
    let mut c = videossm();
    c.arg("info");
    let out = ok(headless(c));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let sections: Vec<&str> = stdout.split("\n[").collect();
    assert!(stdout.starts_with("[0] ") && !sections.is_empty(), "{stdout}");
    for s in &sections {
        assert!(s.contains("    model        "), "an adapter without its model report:\n{s}");
    }
    assert!(!stderr.contains("XDG_RUNTIME_DIR") && !stderr.contains("error"), "{stderr}");
    let file = scratch("headless").join("a.y4m");
    let out = ok(headless(generate(&["a red ball", "--frames", "9", "-q", "-o", file.to_str().unwrap()])));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
}
