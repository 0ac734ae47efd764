//! `videossm bench --full`: the full-size model's chunk on this adapter. The Wan2.1-T2V-1.3B
//! generator (random bf16 weights, a 9-frame cache with 3 sinks, the paper's memory on)
//! makes one chunk of 3 latent frames at `--frame` (832×480 by default), and the Wan2.1
//! VAE decodes it; a GPU-timestamp profile of one DiT call and of the VAE chunk is
//! grouped by kernel family, with each family's achieved TFLOP/s and its share of the
//! adapter's peak, given or measured by the FMA probe (`kernels::peak`).
use crate::generate::vae_budget;
use crate::synthetic::{random_checkpoint, random_vae_checkpoint, Rng};
use anyhow::{bail, Context, Result};
use graph::models::dit::sampler::denoise_chunk;
use graph::models::dit::{load, session::Generator, DitDims};
use graph::models::vae::{VaeDecoder, VaeOptions};
use graph::CompileOptions;
use runtime::kernels::peak::{Params as PeakParams, Peak};
use runtime::{DType, Gpu, StepTime};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use weights::{DitConfig, GenerationConfig, VaeConfig};

/// Pixels per latent cell of a side (VAE ×8, then the DiT's 2×2 patches).
const FRAME_ALIGN: usize = 16;

#[derive(Clone, Debug)]
pub struct FullOptions {
    /// Frame width and height in pixels, multiples of 16.
    pub frame: (usize, usize),
    /// Fewer DiT blocks than the model's 30, for a quick check (the per-block figures
    /// are those of the full model; the chunk's total is not).
    pub layers: Option<usize>,
    /// Peak TFLOP/s (f32, f16) of the adapter; measured by the FMA probe when absent.
    pub peak_tflops: Option<(f64, f64)>,
}

/// `WxH` as given to `--frame`.
pub fn parse_frame(s: &str) -> Result<(usize, usize), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("{s:?}: use WxH, e.g. 832x480"))?;
    let num = |v: &str| v.trim().parse::<usize>().map_err(|_| format!("{s:?}: {v:?} is not a whole number of pixels"));
    let (w, h) = (num(w)?, num(h)?);
    if w == 0 || h == 0 || w % FRAME_ALIGN != 0 || h % FRAME_ALIGN != 0 {
        return Err(format!("{s:?}: width and height must be positive multiples of {FRAME_ALIGN} (the VAE's 8 × the DiT's 2×2 patches)"));
    }
    Ok((w, h))
}

/// `F32,F16` as given to `--peak-tflops` (one number: the same for both).
pub fn parse_peak(s: &str) -> Result<(f64, f64), String> {
    let nums: Vec<f64> = s
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{s:?}: use F32,F16 in TFLOP/s, e.g. 67,990"))?;
    match nums[..] {
        [a] if a > 0.0 => Ok((a, a)),
        [a, b] if a > 0.0 && b > 0.0 => Ok((a, b)),
        _ => Err(format!("{s:?}: use one or two positive numbers (F32,F16 TFLOP/s)")),
    }
}

/// Best TFLOP/s of the FMA probe over grids doubled until one run takes 20 ms of GPU
/// time (so a large GPU is filled and a CPU adapter is not kept for minutes).
pub fn measure_peak(gpu: &Gpu, f16: bool) -> Result<f64> {
    const ITERS: u32 = 4096;
    let kernel = Peak { f16 };
    let mut invocations: u32 = 1 << 12;
    loop {
        let out = gpu.empty("peak", &[invocations as usize], DType::F32)?;
        let p = PeakParams::new(invocations, ITERS);
        let mut b = gpu.program();
        b.push(&kernel, &p, &[&out])?;
        let mut prog = b.build()?;
        prog.run(gpu)?;
        gpu.wait()?;
        let t: StepTime = prog.profile(gpu)?.remove(0);
        if t.ms >= 20.0 || invocations >= 1 << 26 {
            return Ok(t.flops / t.ms / 1e9);
        }
        invocations *= 2;
    }
}

/// The figures of one family in a profile.
#[derive(Default)]
struct Family {
    dispatches: usize,
    ms: f64,
    flops: f64,
    /// Some dispatch ran on matrix units (its share is then of the f16 peak).
    f16: bool,
}

/// A profile grouped by family, slowest first, with TFLOP/s and the share of `peak`.
fn families(profile: &[(String, StepTime)], peak: (f64, f64)) -> Value {
    let mut by: BTreeMap<String, Family> = BTreeMap::new();
    for (_, t) in profile {
        let f = by.entry(t.family().to_string()).or_default();
        f.dispatches += 1;
        f.ms += t.ms;
        f.flops += t.flops;
        f.f16 |= t.kernel.contains("coop");
    }
    let total: f64 = by.values().map(|f| f.ms).sum();
    let mut rows: Vec<(String, Family)> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1.ms.total_cmp(&a.1.ms));
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(name, f)| {
            let tflops = (f.flops > 0.0 && f.ms > 0.0).then(|| f.flops / f.ms / 1e9);
            let peak = if f.f16 { peak.1 } else { peak.0 };
            json!({
                "family": name, "dispatches": f.dispatches, "ms": f.ms, "time_share": f.ms / total.max(1e-12),
                "tflop": f.flops / 1e12, "tflops": tflops, "peak_share": tflops.map(|t| t / peak),
                "peak": if f.f16 { "f16" } else { "f32" },
            })
        })
        .collect();
    json!({ "gpu_ms": total, "families": rows })
}

pub fn run(gpu: Arc<Gpu>, o: &FullOptions) -> Result<Value> {
    let mut cfg = DitConfig::wan2_1_t2v_1_3b();
    if let Some(n) = o.layers {
        if n == 0 || n > cfg.num_layers {
            bail!("--layers {n}: use 1..={}", cfg.num_layers);
        }
        cfg.num_layers = n;
    }
    if !gpu.caps.timestamps {
        bail!("bench --full profiles with GPU timestamps, which {} does not offer", gpu.info.name);
    }
    let peak = match o.peak_tflops {
        Some(p) => json!({"f32": p.0, "f16": p.1, "source": "--peak-tflops"}),
        None => {
            log::info!("measuring the FMA peak");
            let f32 = measure_peak(&gpu, false)?;
            let f16 = if gpu.caps.f16 { measure_peak(&gpu, true)? } else { f32 };
            json!({"f32": f32, "f16": f16, "source": "FMA probe (vector units: matrix units go beyond it)"})
        }
    };
    let peaks = (peak["f32"].as_f64().unwrap_or(1.0), peak["f16"].as_f64().unwrap_or(1.0));
    let (fw, fh) = o.frame;
    let (lh, lw) = (fh / 8, fw / 8);

    let gen = GenerationConfig::default();
    let fpb = gen.num_frame_per_block;
    log::info!("drawing {} DiT blocks of random weights", cfg.num_layers);
    let weights = {
        let ck = random_checkpoint(&cfg, true, 7);
        load::load(&gpu, &cfg, &ck, DType::BF16, true).context("loading the random full-size DiT")?
    };
    let dims = DitDims::new(&cfg, fpb, lh, lw);
    let tokens = dims.tokens();
    let mut g = Generator::new(gpu.clone(), &weights, dims, cfg.local_attn_size as usize, cfg.sink_size, CompileOptions::default())?;
    let mut rng = Rng::new(3);
    g.set_context(&rng.normals(cfg.text_len * cfg.text_dim, 1.0))?;
    let (ts, sigmas): (Vec<f32>, Vec<f32>) = gen.schedule().into_iter().unzip();
    let len = fpb * cfg.in_dim * lh * lw;
    // The cache is full (sinks and window) from the chunk that evicts first on: time up to
    // and including it, and profile its pass, whose attention then sees every key.
    let chunks = (cfg.local_attn_size as usize).div_ceil(fpb) + 1;
    let mut chunk_ms = Vec::with_capacity(chunks);
    let mut latents = Vec::new();
    for c in 0..chunks {
        log::info!("DiT chunk {}/{chunks}", c + 1);
        let noise = rng.normals(len, 1.0);
        let draws: Vec<Vec<f32>> = (0..ts.len()).map(|_| rng.normals(len, 1.0)).collect();
        let t = Instant::now();
        latents = denoise_chunk(&mut g, &ts, &sigmas, 0.0, noise, |s| draws[s].clone(), |_, _, _| {})?;
        chunk_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let calls = ts.len() + 1;
    let dit_profile = g.pass_graph().compiled.profile(&gpu)?;
    let dit_report = g.pass_graph().compiled.report();
    let dit_chunk_ms = *chunk_ms.last().expect("at least one chunk");

    log::info!("decoding a chunk with the Wan2.1 VAE");
    let vcfg = VaeConfig::wan2_1();
    let vweights = graph::models::vae::load::load(&gpu, &vcfg, &random_vae_checkpoint(&vcfg, 3), DType::BF16)?;
    // In as many row bands as a session takes beside this DiT.
    let opts = VaeOptions { activation_budget: Some(vae_budget(g.planned_activation_bytes())), ..VaeOptions::default() };
    let mut vae = VaeDecoder::new(gpu.clone(), vweights, &vcfg, lh, lw, opts)?;
    let per = vcfg.z_dim * lh * lw;
    vae.decode(&latents[..per], 1)?;
    // The chunk graph compiles on its first decode: time the second.
    vae.decode(&latents, fpb)?;
    let t = Instant::now();
    vae.decode(&latents, fpb)?;
    let vae_chunk_ms = t.elapsed().as_secs_f64() * 1e3;
    let vae_profile = vae.compiled(false, fpb)?.profile(&gpu)?;
    let video_frames = vae.output_frames(fpb);
    let chunk_total = dit_chunk_ms + vae_chunk_ms;
    Ok(json!({
        "config": format!("Wan2.1-T2V-1.3B DiT ({} of 30 blocks), bf16 weights, {fw}x{fh} ({tokens} tokens a chunk of {fpb} latent frames), \
                           cache {} latent frames with {} sinks, memory {}; Wan2.1 VAE",
                           cfg.num_layers, cfg.local_attn_size, cfg.sink_size, cfg.memory_type),
        "frame": [fw, fh],
        "layers": cfg.num_layers,
        "tokens_per_chunk": tokens,
        "peak_tflops": peak,
        "dit": {
            "chunk_ms": chunk_ms,
            "calls_per_chunk": calls,
            "call": families(&dit_profile, peaks),
            "weight_bytes": dit_report.weight_bytes,
            "state_bytes": dit_report.state_bytes,
            "activation_bytes": dit_report.planned_activation_bytes,
        },
        "vae": { "chunk_ms": vae_chunk_ms, "video_frames": video_frames, "chunk": families(&vae_profile, peaks) },
        "chunk_ms": chunk_total,
        "frames_per_s": video_frames as f64 / (chunk_total / 1e3),
        "gpu_memory_bytes": gpu.memory().map(|m| m.allocated),
    }))
}

fn families_table(s: &mut String, what: &str, v: &Value) {
    *s += &format!(
        "\n{what}: {:.1} ms GPU\n  family        dispatches        ms   time   TFLOP/s   of peak\n",
        v["gpu_ms"].as_f64().unwrap_or(0.0)
    );
    for f in v["families"].as_array().into_iter().flatten() {
        let opt = |key: &str, scale: f64, digits: usize| f[key].as_f64().map_or("–".to_string(), |x| format!("{:.*}", digits, x * scale));
        *s += &format!(
            "  {:<12} {:>10} {:>9.2} {:>5.1}% {:>9} {:>8}{}\n",
            f["family"].as_str().unwrap_or("?"),
            f["dispatches"],
            f["ms"].as_f64().unwrap_or(0.0),
            100.0 * f["time_share"].as_f64().unwrap_or(0.0),
            opt("tflops", 1.0, 3),
            opt("peak_share", 100.0, 1),
            if f["peak_share"].is_number() { format!("% ({})", f["peak"].as_str().unwrap_or("")) } else { String::new() },
        );
    }
}

/// The human-readable form of [`run`]'s result (the `full` object).
pub fn table(adapter: &Value, v: &Value) -> String {
    let peak = &v["peak_tflops"];
    let mut s = format!(
        "adapter: {} ({}, {})\n{}\npeak: {:.3} TFLOP/s f32, {:.3} f16 ({})\n",
        adapter["name"].as_str().unwrap_or("?"),
        adapter["backend"].as_str().unwrap_or("?"),
        adapter["device_type"].as_str().unwrap_or("?"),
        v["config"].as_str().unwrap_or(""),
        peak["f32"].as_f64().unwrap_or(0.0),
        peak["f16"].as_f64().unwrap_or(0.0),
        peak["source"].as_str().unwrap_or("")
    );
    let dit = &v["dit"];
    let chunks: Vec<String> =
        dit["chunk_ms"].as_array().into_iter().flatten().filter_map(Value::as_f64).map(|x| format!("{x:.0}")).collect();
    s += &format!("DiT chunk ms (the last with the cache full): {}; {} calls a chunk\n", chunks.join(", "), dit["calls_per_chunk"]);
    families_table(&mut s, "one DiT call", &dit["call"]);
    families_table(&mut s, "one VAE chunk", &v["vae"]["chunk"]);
    s += &format!(
        "\nchunk: {:.1} ms (DiT {:.1} + VAE {:.1}) for {} frames: {:.2} frames/s\n",
        v["chunk_ms"].as_f64().unwrap_or(0.0),
        dit["chunk_ms"].as_array().and_then(|a| a.last()).and_then(Value::as_f64).unwrap_or(0.0),
        v["vae"]["chunk_ms"].as_f64().unwrap_or(0.0),
        v["vae"]["video_frames"],
        v["frames_per_s"].as_f64().unwrap_or(0.0)
    );
    s
}
