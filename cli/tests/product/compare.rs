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
        (bad.to_str().unwrap(), "neither \"generation\" nor \"full\": not the output of `videossm bench [--full] --json`"),
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

fn full_run(name: &str, fps: f64, matmul_tflops: f64, norm_ms: f64) -> serde_json::Value {
    let family = |family: &str, ms: f64, tflops: Option<f64>, share: Option<f64>| json!({"family": family, "dispatches": 1, "ms": ms, "time_share": 0.5, "tflop": 1.0, "tflops": tflops, "peak_share": share, "peak": "f32"});
    json!({
        "adapter": {"name": name, "backend": "Vulkan", "device_type": "DiscreteGpu", "driver": "x"},
        "full": {
            "config": "full", "frames_per_s": fps, "chunk_ms": 1000.0,
            "dit": {"chunk_ms": [5000.0, 800.0], "call": {"gpu_ms": 100.0, "families": [
                family("matmul", 90.0, Some(matmul_tflops), Some(matmul_tflops / 50.0)), family("norm", norm_ms, None, None)]}},
            "vae": {"chunk_ms": 200.0, "chunk": {"gpu_ms": 200.0, "families": [family("conv3d", 200.0, Some(10.0), Some(0.2))]}},
        },
    })
}

#[test]
fn compare_renders_full_size_runs_by_family() {
    let dir = scratch("compare-full");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    std::fs::write(&a, full_run("gpu-a", 4.0, 10.0, 2.0).to_string()).unwrap();
    std::fs::write(&b, full_run("gpu-b", 8.0, 20.0, 1.0).to_string()).unwrap();
    let out = ok({
        let mut c = videossm();
        c.args(["bench", "--compare", a.to_str().unwrap(), b.to_str().unwrap()]);
        c
    });
    let table = String::from_utf8(out.stdout).unwrap();
    for row in [
        "| full config | full | full | same |",
        "| full: frames/s | 4.00 | 8.00 | 2.00× |",
        "| full: DiT ms per chunk | 800.00 ms | 800.00 ms | 1.00× |",
        "| full: DiT call matmul | 10000.00 GFLOP/s | 20000.00 GFLOP/s | 2.00× |",
        "| full: DiT call matmul share of peak | 20.00 % | 40.00 % | – |",
        "| full: DiT call norm ms | 2.00 ms | 1.00 ms | 2.00× |",
        "| full: VAE chunk conv3d | 10000.00 GFLOP/s | 10000.00 GFLOP/s | 1.00× |",
    ] {
        assert!(table.contains(row), "{row:?} not in\n{table}");
    }
    assert!(!table.contains("generation"), "no generation rows for --full runs:\n{table}");
}
