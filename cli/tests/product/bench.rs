//! `videossm bench --full`: the full-size model's chunk, profiled by kernel family.
use super::support::*;
use serde_json::Value;

fn family<'a>(part: &'a Value, name: &str) -> &'a Value {
    let rows = part["families"].as_array().expect("families");
    rows.iter().find(|f| f["family"] == name).unwrap_or_else(|| panic!("no {name} family in {part:#}"))
}

#[test]
fn full_bench_profiles_the_full_width_model_at_a_small_frame() {
    // One of the 30 full-width blocks at 16×16 (one token a latent frame): the widths that
    // matter for compiling and for the FLOP accounting, at a size lavapipe runs in minutes
    // (most of it compiling the full-width tiles on the first chunk).
    let out = ok({
        let mut c = videossm();
        c.args(["bench", "--full", "--frame", "16x16", "--layers", "1", "--json"]);
        c
    });
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let full = &v["full"];
    assert_eq!(v["adapter"]["name"].as_str().map(str::is_empty), Some(false));
    assert_eq!(full["tokens_per_chunk"], 3);
    // The cache holds 9 latent frames: the fourth chunk is the first to see it full.
    assert_eq!(full["dit"]["chunk_ms"].as_array().map(Vec::len), Some(4));
    assert!(full["peak_tflops"]["f32"].as_f64().is_some_and(|p| p > 0.0), "{:#}", full["peak_tflops"]);
    assert!(full["frames_per_s"].as_f64().is_some_and(|f| f > 0.0));
    assert_eq!(full["vae"]["video_frames"], 12);
    let call = &full["dit"]["call"];
    for name in ["matmul", "attention"] {
        let f = family(call, name);
        assert!(f["tflops"].as_f64().is_some_and(|t| t > 0.0) && f["peak_share"].as_f64().is_some_and(|s| s > 0.0), "{f:#}");
    }
    // Attention arithmetic counted independently: 12 heads of 128 channels, 4 FLOP per
    // (query, key, channel); the 3 queries see the full cache of 9 frames × 1 token, then
    // the 512 text tokens.
    let want = 4.0 * 12.0 * 128.0 * 3.0 * (9.0 + 512.0);
    let got = family(call, "attention")["tflop"].as_f64().unwrap() * 1e12;
    assert!((got - want).abs() < 1.0, "attention FLOP {got} vs {want}");
    assert!(family(&full["vae"]["chunk"], "conv3d")["tflops"].as_f64().is_some_and(|t| t > 0.0));
    // Families that move data rather than compute are reported by time only.
    assert!(family(call, "norm")["tflops"].is_null());
}

#[test]
fn full_bench_refuses_bad_sizes_naming_the_flag() {
    for (args, want) in [
        (&["--frame", "30x32"][..], "multiples of 16"),
        (&["--frame", "832"][..], "use WxH"),
        (&["--layers", "31"][..], "--layers 31: use 1..=30"),
        (&["--peak-tflops", "0"][..], "positive"),
    ] {
        let out = videossm().args(["bench", "--full"]).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{args:?}: {want:?} not in {err}");
    }
}
