//! `videossm bench --soak N`: one long generation with a small random model, the whole
//! product path per chunk (DiT chunk, VAE decode, the host copy of the session state a
//! run keeps for device faults), recording per chunk the time, the device memory the
//! driver allocator holds and the process's resident memory. Both must stay flat: the
//! state is constant-size for a bounded window, so any growth is a leak.
use crate::generate::{Pipeline, PipelineOptions, Session};
use crate::synthetic::write_small_model_folder_with;
use anyhow::{Context, Result};
use runtime::GpuOptions;
use serde_json::{json, Value};
use std::time::Instant;
use weights::MemoryType;

/// Resident memory of this process in bytes (Linux; None elsewhere).
pub fn host_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse::<u64>().ok()?;
    Some(kb * 1024)
}

/// Generates `chunks` chunks and returns the per-chunk series with their summary.
pub fn run(gpu: GpuOptions, chunks: usize, memory: MemoryType) -> Result<Value> {
    let dir = std::env::temp_dir().join(format!("videossm-soak-{}", std::process::id()));
    write_small_model_folder_with(&dir, memory).with_context(|| format!("writing {}", dir.display()))?;
    let pipeline = Pipeline::load(&dir, &PipelineOptions { gpu, ..PipelineOptions::default() });
    let _ = std::fs::remove_dir_all(&dir);
    let pipeline = pipeline?;
    let mut session = Session::new(&pipeline, "a red ball bouncing", 1)?;
    let (mut ms, mut gpu_bytes, mut rss) = (Vec::with_capacity(chunks), Vec::with_capacity(chunks), Vec::with_capacity(chunks));
    for _ in 0..chunks {
        let t = Instant::now();
        let chunk = session.next_frames()?;
        let state = session.snapshot()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        drop((chunk, state));
        gpu_bytes.push(pipeline.gpu().memory().map(|m| m.allocated));
        rss.push(host_rss());
    }
    let window = (chunks / 10).max(1);
    let (first, last) = (1.min(chunks - 1)..(1 + window).min(chunks), chunks - window..chunks);
    let mean = |v: &[f64], r: std::ops::Range<usize>| v[r.clone()].iter().sum::<f64>() / r.len() as f64;
    let series = |v: &[Option<u64>]| v.iter().map(|x| x.map_or(f64::NAN, |b| b as f64)).collect::<Vec<f64>>();
    let summary = |v: &[f64]| json!({"first": mean(v, first.clone()), "last": mean(v, last.clone()), "ratio": mean(v, last.clone()) / mean(v, first.clone())});
    let (g, h) = (series(&gpu_bytes), series(&rss));
    Ok(json!({
        "config": format!("D=64 H=4 layers=2 latent 4x4 (32x32 px) chunk 3 frames window 9 sinks 3 memory {memory}, VAE dim 8"),
        "chunks": chunks,
        "window_chunks": window,
        "chunk_ms": summary(&ms),
        "gpu_allocated_bytes": summary(&g),
        "host_rss_bytes": summary(&h),
        "max_gpu_allocated_bytes": g.iter().copied().fold(f64::NAN, f64::max),
        "max_host_rss_bytes": h.iter().copied().fold(f64::NAN, f64::max),
        "per_chunk": {"ms": ms, "gpu_allocated_bytes": gpu_bytes, "host_rss_bytes": rss},
    }))
}

/// The human-readable summary of [`run`]'s result.
pub fn table(v: &Value) -> String {
    let mut s = format!(
        "soak: {} chunks of {}\n  means over the first and last {} chunks (chunk 0 is warm-up):\n",
        v["chunks"],
        v["config"].as_str().unwrap_or(""),
        v["window_chunks"]
    );
    for (key, what, scale) in
        [("chunk_ms", "ms per chunk", 1.0), ("gpu_allocated_bytes", "GPU MiB", 1048576.0), ("host_rss_bytes", "host RSS MiB", 1048576.0)]
    {
        let r = &v[key];
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        s += &format!("  {what:<14} first {:>10.2}  last {:>10.2}  last/first {:.3}\n", f("first") / scale, f("last") / scale, f("ratio"));
    }
    s
}
