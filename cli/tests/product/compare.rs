//! `videossm bench --compare`: `bench --json` files of two machines as one table with ratios.
use super::support::*;
use serde_json::json;

fn run(name: &str, backend: &str, gflops: f64, chunk_ms: &[f64], fps: f64) -> serde_json::Value {
    json!({
        "adapter": {"name": name, "backend": backend, "device_type": "Cpu", "driver": "Mesa"},
        "kernels": [
            {"name": "matmul", "variant": "naive", "kernel": "matmul_naive", "shape": [64, 64, 64], "dtype": "f32", "ms": 1.0, "gflops": 1.0},
            {"name": "matmul", "variant": "tuned", "kernel": "matmul_t", "shape": [64, 64, 64], "dtype": "f32", "ms": 0.1, "gflops": gflops},
        ],
        "generation": {"config": "small", "chunk_ms": chunk_ms, "frames_per_s": fps, "peak_gpu_bytes": 2097152, "memory_time_share": null},
    })
}

#[test]
fn compare_renders_two_runs_side_by_side() {
    let dir = scratch("compare");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    std::fs::write(&a, run("lavapipe", "Vulkan", 30.0, &[9000.0, 1000.0, 1200.0, 1100.0], 9.0).to_string()).unwrap();
    std::fs::write(&b, run("llvmpipe", "Gl", 10.0, &[20000.0, 4400.0, 4000.0, 4200.0], 3.0).to_string()).unwrap();
    let out = ok({
        let mut c = videossm();
        c.args(["bench", "--compare", a.to_str().unwrap(), b.to_str().unwrap()]);
        c
    });
    let table = String::from_utf8(out.stdout).unwrap();
    for row in [
        "| figure | lavapipe (Vulkan) | llvmpipe (Gl) | vs first |",
        "| generation config | small | small | same |",
        "| matmul tuned f32 [64,64,64] | 30.00 GFLOP/s | 10.00 GFLOP/s | 0.33× |",
        "| matmul naive f32 [64,64,64] | 1.00 GFLOP/s | 1.00 GFLOP/s | 1.00× |",
        "| generation: frames/s | 9.00 | 3.00 | 0.33× |",
        // Medians of the chunks after the first: 1100 and 4200 ms.
        "| generation: median ms per chunk (after the first) | 1100.00 ms | 4200.00 ms | 0.26× |",
        "| generation: GPU memory | 2.00 MiB | 2.00 MiB | 1.00× |",
        "| generation: SSM memory kernels' share of a call | – | – | – |",
    ] {
        assert!(table.contains(row), "{row:?} not in\n{table}");
    }
}

#[test]
fn compare_refuses_what_is_not_a_bench_run() {
    let dir = scratch("compare-bad");
    let (good, bad, garbage) = (dir.join("good.json"), dir.join("bad.json"), dir.join("garbage.json"));
    std::fs::write(&good, run("a", "Vulkan", 1.0, &[1.0], 1.0).to_string()).unwrap();
    std::fs::write(&bad, r#"{"adapter": {}}"#).unwrap();
    std::fs::write(&garbage, "not json").unwrap();
    for (other, want) in [
        (bad.to_str().unwrap(), "no \"kernels\": not the output of `videossm bench --json`"),
        (garbage.to_str().unwrap(), "not JSON"),
        ("/nonexistent.json", "/nonexistent.json"),
    ] {
        let out = videossm().args(["bench", "--compare", good.to_str().unwrap(), other]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{want:?} not in {err}");
    }
    let out = videossm().args(["bench", "--compare", good.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success(), "one file is not a comparison");
}
