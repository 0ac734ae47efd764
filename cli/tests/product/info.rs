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
        "peak",
        "DiT weights (f32)",
        "KV window",
        "VAE caches",
        "activations (shared by every graph)",
        "DiT pass",
        "umT5 streamed one linear at a time",
        "VAE chunk",
        "budgets    8 GiB yes, 12 GiB yes",
        "fits       yes",
    ] {
        assert!(out.contains(part), "{part:?} not in {out}");
    }
}

/// `--json`: one object per adapter with the peak, its parts (which add up to it) and
/// the budgets; `--max-memory` joins the budgets, and a budget a session cannot keep
/// stops `generate` before its first frame, naming the largest part.
#[test]
fn json_parts_add_up_to_the_peak_and_a_budget_is_kept() {
    let out = info(&["--json", "--max-memory", "1M"], None);
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let peak = v["peak_bytes"].as_u64().unwrap();
    let parts = v["parts"].as_object().unwrap();
    assert_eq!(parts.values().map(|b| b.as_u64().unwrap()).sum::<u64>(), peak, "{v}");
    for key in ["DiT weights (f32)", "VAE caches", "activations (shared by every graph)"] {
        assert!(parts[key].as_u64().unwrap() > 0, "{key}: {v}");
    }
    assert!(v["allocated_bytes"].as_u64().is_some_and(|a| a <= peak), "lavapipe reports its allocations: {v}");
    assert_eq!(v["budgets"]["8 GiB"], true);
    assert_eq!(v["budgets"]["--max-memory 0.00 GiB"], false, "{v}");

    let file = scratch("budget").join("a.y4m");
    let out = generate(&["a red ball", "--frames", "9", "--max-memory", "1M", "-o", file.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("over the 0.00 GiB budget (--max-memory)") && stderr.contains("the largest part is"), "{stderr}");
    assert!(!file.exists(), "nothing written");
    let out = generate(&["a red ball", "--max-memory", "8X", "-o", file.to_str().unwrap()]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-memory \"8X\": unknown unit"), "{:?}", out);
}

/// Bindings too small for the test model: a weight that cannot be split (the load fails
/// naming it); with the weights fitting, the VAE's activations of a 64×64 frame, too large
/// for one binding, fit in row bands.
#[test]
fn a_small_binding_says_what_does_not_fit() {
    let model = model_dir().to_str().unwrap();
    let out = info(&["--model", model], Some("100000"));
    let want = "does not fit: storage binding decoder.upsamples.0.residual.2.weight: 110592 bytes requested, the adapter allows 100000";
    assert!(out.contains(want), "{out}");
    let out = info(&["--model", model, "--size", "64x64"], Some("120000"));
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
