//! `videossm bench`: kernel figures and per-chunk generation figures of this
//! adapter, as a table or as one JSON object other tools can compare across machines.
use crate::synthetic::{random_checkpoint, small_config, Rng};
use anyhow::Result;
use graph::models::dit::sampler::denoise_chunk;
use graph::models::dit::{load, session::Generator, DitDims};
use graph::CompileOptions;
use runtime::kernels::matmul::{Act, Matmul, Params, Residual, Tiling};
use runtime::{DType, Gpu};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use weights::{GenerationConfig, MemoryType};

/// Best wall time of `reps` runs of `f` (after one warm-up), in ms.
fn best_ms(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(best)
}

/// The naive baseline and this adapter's chosen variant at `m×n×k`.
pub fn matmul(gpu: &Gpu, m: usize, n: usize, k: usize) -> Result<Vec<Value>> {
    let mut rng = Rng::new(1);
    let x = gpu.upload("x", &[m, k], DType::F32, &rng.normals(m * k, 1.0))?;
    let y = gpu.empty("y", &[m, n], DType::F32)?;
    let p = Params::dense(m, n, k);
    let mut out = Vec::new();
    for dtype in [DType::F32, DType::BF16] {
        let w = gpu.upload("w", &[k, n], dtype, &rng.normals(n * k, 0.1))?;
        let tuned = Matmul::for_device(&gpu.caps, dtype, false, Act::None, Residual::None, &p);
        let naive = Matmul { tiling: Tiling::Naive, x_vec4: false, ..tuned };
        for (variant, kernel) in [("naive", naive), ("tuned", tuned)] {
            if variant == "naive" && dtype != DType::F32 {
                continue;
            }
            let mut b = gpu.program();
            b.push(&kernel, &p, &[&x, &w, &y])?;
            let mut prog = b.build()?;
            let ms = best_ms(3, || {
                prog.run(gpu)?;
                Ok(gpu.wait()?)
            })?;
            out.push(json!({
                "name": "matmul", "variant": variant, "kernel": kernel.to_string(), "shape": [m, n, k], "dtype": dtype.name(),
                "ms": ms, "gflops": 2.0 * (m * n * k) as f64 / ms / 1e6,
            }));
        }
    }
    Ok(out)
}

/// Generates `chunks` chunks with the small configuration and random weights, with the
/// memory of form `memory` (none: window only), timing every chunk (4 denoising calls +
/// the context call).
pub fn generation(gpu: Arc<Gpu>, chunks: usize, memory: Option<MemoryType>, window: i64) -> Result<Value> {
    let mut cfg = small_config();
    cfg.local_attn_size = window;
    if let Some(form) = memory {
        cfg.memory_type = form.name().into();
        // B.6's router opens over 12 latent frames (4 chunks), as in the dit-memory-gd bundle.
        cfg.memory_horizon = (form == MemoryType::GatedDelta).then_some(12);
    }
    let form = memory.map_or("off", MemoryType::name);
    let memory = memory.is_some();
    let gen = GenerationConfig::default();
    let (fpb, h, w) = (gen.num_frame_per_block, 16, 16);
    let weights = load::load(&gpu, &cfg, &random_checkpoint(&cfg, memory, 7), DType::F32, memory)?;
    let capacity = if window < 0 { chunks * fpb } else { window as usize };
    let mut g = Generator::new(gpu.clone(), &weights, DitDims::new(&cfg, fpb, h, w), capacity, cfg.sink_size, CompileOptions::default())?;
    let mut rng = Rng::new(3);
    g.set_context(&rng.normals(cfg.text_len * cfg.text_dim, 1.0))?;
    let (ts, sigmas): (Vec<f32>, Vec<f32>) = gen.schedule().into_iter().unzip();
    let len = fpb * cfg.in_dim * h * w;
    let mut chunk_ms = Vec::with_capacity(chunks);
    for _ in 0..chunks {
        let noise = rng.normals(len, 1.0);
        let draws: Vec<Vec<f32>> = (0..ts.len()).map(|_| rng.normals(len, 1.0)).collect();
        let t = Instant::now();
        denoise_chunk(&mut g, &ts, &sigmas, 0.0, noise, |s| draws[s].clone(), |_, _, _| {})?;
        chunk_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // One profiled call (GPU timestamps where available): per-kernel totals and the memory's share.
    let (memory_share, profile) = if gpu.caps.timestamps {
        let prof = g.pass_graph().compiled.profile(&gpu)?;
        let total: f64 = prof.iter().map(|p| p.1.ms).sum();
        let mut by_kernel: std::collections::BTreeMap<String, (usize, f64)> = Default::default();
        for (_, t) in &prof {
            let e = by_kernel.entry(t.kernel.clone()).or_default();
            e.0 += 1;
            e.1 += t.ms;
        }
        let mut rows: Vec<_> = by_kernel.into_iter().collect();
        rows.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
        let table: Vec<Value> = rows.iter().map(|(k, (n, ms))| json!({"kernel": k, "dispatches": n, "ms": ms})).collect();
        (Some(prof.iter().filter(|p| p.0.contains(".memory.")).map(|p| p.1.ms).sum::<f64>() / total), Some(table))
    } else {
        (None, None)
    };
    let r = g.pass_graph().compiled.report();
    let total_s: f64 = chunk_ms.iter().sum::<f64>() / 1e3;
    // Every chunk adds 4·F video frames (the very first frame of a video is single).
    let frames = 4 * fpb * chunks - 3;
    Ok(json!({
        "config": format!("D={} H={} layers={} latent {}x{} chunk {} frames window {} sinks {} memory {form}",
            cfg.dim, cfg.num_heads, cfg.num_layers, h, w, fpb, window, cfg.sink_size),
        "chunk_ms": chunk_ms,
        "frames_per_s": frames as f64 / total_s,
        "peak_gpu_bytes": r.weight_bytes + r.state_bytes + r.planned_activation_bytes + r.io_bytes,
        "weight_bytes": r.weight_bytes,
        "state_bytes": r.state_bytes,
        "activation_bytes": r.planned_activation_bytes,
        "activation_bytes_without_reuse": r.naive_activation_bytes,
        "dispatches_per_call": r.dispatches,
        "memory_time_share": memory_share,
        "profile": profile,
    }))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Mean chunk time over chunks `a..b` (clamped), for the "flat over time" check.
pub fn window_mean(chunk_ms: &[f64], a: usize, b: usize) -> f64 {
    let b = b.min(chunk_ms.len());
    mean(&chunk_ms[a.min(b.saturating_sub(1))..b])
}

/// The adapter as every `bench --json` object names it.
pub fn adapter(gpu: &Gpu) -> Value {
    let info = &gpu.info;
    json!({ "name": info.name, "backend": format!("{:?}", info.backend), "device_type": format!("{:?}", info.device_type),
            "driver": format!("{} {}", info.driver, info.driver_info) })
}

pub fn run(gpu: Arc<Gpu>, chunks: usize, size: usize, window: i64, memory: Option<MemoryType>) -> Result<Value> {
    Ok(json!({
        "adapter": adapter(&gpu),
        "kernels": matmul(&gpu, size, size, size)?,
        "generation": generation(gpu.clone(), chunks, memory, window)?,
    }))
}

/// The human-readable form of [`run`]'s result.
pub fn table(v: &Value) -> String {
    let mut s = format!(
        "adapter: {} ({}, {})\n\nkernel                              shape            dtype   ms       GFLOP/s\n",
        v["adapter"]["name"].as_str().unwrap_or("?"),
        v["adapter"]["backend"].as_str().unwrap_or("?"),
        v["adapter"]["device_type"].as_str().unwrap_or("?")
    );
    for k in v["kernels"].as_array().into_iter().flatten() {
        s += &format!(
            "{:<35} {:<16} {:<7} {:<8.2} {:.2}\n",
            k["kernel"].as_str().unwrap_or(""),
            k["shape"].to_string(),
            k["dtype"].as_str().unwrap_or(""),
            k["ms"].as_f64().unwrap_or(0.0),
            k["gflops"].as_f64().unwrap_or(0.0)
        );
    }
    let g = &v["generation"];
    let ms: Vec<f64> = g["chunk_ms"].as_array().into_iter().flatten().filter_map(|x| x.as_f64()).collect();
    let n = ms.len();
    s += &format!(
        "\ngeneration: {}\n  {} chunks, {:.1} frames/s; ms per chunk: first {:.1}, chunks 5-9 {:.1}, last five {:.1}\n  GPU memory {:.1} MiB (weights {:.1}, state {:.2}, activations {:.2})\n",
        g["config"].as_str().unwrap_or(""),
        n,
        g["frames_per_s"].as_f64().unwrap_or(0.0),
        ms.first().copied().unwrap_or(0.0),
        window_mean(&ms, 5, 10),
        window_mean(&ms, n.saturating_sub(5), n),
        g["peak_gpu_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
        g["weight_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
        g["state_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
        g["activation_bytes"].as_f64().unwrap_or(0.0) / 1048576.0,
    );
    if let Some(share) = g["memory_time_share"].as_f64() {
        s += &format!("  memory kernels: {:.1}% of a call\n\none call, GPU time by kernel:\n", 100.0 * share);
    }
    for row in g["profile"].as_array().into_iter().flatten() {
        s += &format!(
            "  {:<40} {:>4} dispatches {:>9.2} ms\n",
            row["kernel"].as_str().unwrap_or(""),
            row["dispatches"],
            row["ms"].as_f64().unwrap_or(0.0)
        );
    }
    s
}
