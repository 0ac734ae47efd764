//! The f64 CPU reference of the generator (tests/support/reference/dit.rs): first
//! proven against the official bundles, then used as the oracle for long
//! random-weight runs of the GPU generator with window, sinks and memory.
use graph::models::dit::sampler::denoise_chunk;
use graph::models::dit::{load, session::Generator, DitDims};
use graph::CompileOptions;
use std::collections::BTreeMap;
use videossm_suite::reference::dit::{Config, Reference};
use videossm_suite::{err_over_std, gpu, load_host, parity_dir, Rng};
use weights::{DitConfig, GenerationConfig};

fn ref_config(cfg: &DitConfig, frames: usize, height: usize, width: usize, video_frames: usize) -> Config {
    let per = (height / 2) * (width / 2);
    Config {
        dim: cfg.dim,
        heads: cfg.num_heads,
        layers: cfg.num_layers,
        ffn: cfg.ffn_dim,
        freq_dim: cfg.freq_dim,
        text_dim: cfg.text_dim,
        text_len: cfg.text_len,
        channels: cfg.in_dim,
        eps: cfg.eps,
        capacity: Some(if cfg.local_attn_size < 0 { video_frames } else { cfg.local_attn_size as usize } * per),
        sink: cfg.sink_size * per,
        frames,
        height,
        width,
    }
}

#[test]
fn reference_reproduces_every_generator_bundle() {
    for name in ["dit-small", "dit-window", "dit-memory"] {
        let dir = parity_dir(name);
        let cfg = DitConfig::load(&dir.join("config.json")).unwrap();
        let gen = GenerationConfig::load(&dir.join("generation.json")).unwrap();
        let (f, h, w) = (gen.num_latent_frames.unwrap(), gen.latent_height.unwrap(), gen.latent_width.unwrap());
        let fpb = gen.num_frame_per_block;
        let weights = load_host(&dir.join("model.safetensors")).into_iter().map(|(k, (_, v))| (k, v)).collect();
        let inputs = load_host(&dir.join("inputs.safetensors"));
        let expected = load_host(&dir.join("expected.safetensors"));
        let mut r = Reference::new(ref_config(&cfg, fpb, h, w, f), weights);
        r.set_context(&inputs["context"].1);
        let (ts, sigmas): (Vec<f32>, Vec<f32>) = gen.schedule().into_iter().unzip();
        let len = fpb * cfg.in_dim * h * w;
        let mut worst = 0f64;
        for c in 0..f / fpb {
            let noise = inputs["noise"].1[c * len..(c + 1) * len].to_vec();
            let renoise = |s: usize| inputs[&format!("renoise.{c}.{s}")].1.clone();
            denoise_chunk(&mut r, &ts, &sigmas, 0.0, noise, renoise, |s, flow, _| {
                let e = err_over_std(flow, &expected[&format!("flow.{c}.{s}")].1);
                worst = worst.max(e);
                assert!(e < 1e-3, "{name} flow.{c}.{s}: {e:.3e} × std");
            })
            .unwrap();
            // The cache never exceeds its capacity: sinks plus the window.
            assert!(r.cached() <= r.cfg.capacity.unwrap(), "{name}: {} cached tokens", r.cached());
        }
        println!("{name}: reference worst flow error {worst:.3e} × std");
    }
}

/// Runs the GPU generator and the reference side by side on a random-weight model with
/// window 7, sinks 2 and 2-frame chunks (evictions from chunk 3 on, chunks split across
/// the sink/ring boundary, the ring wrapping often), switching the prompt before the
/// chunks in `switches`. Returns the worst flow error (× std) and the GPU latents.
fn compare(chunks: usize, switches: &[usize]) -> (f64, Vec<f32>) {
    let mut cfg = DitConfig::load(&parity_dir("dit-memory").join("config.json")).unwrap();
    (cfg.local_attn_size, cfg.sink_size, cfg.num_layers) = (7, 2, 2);
    let (fpb, h, w) = (2, 4, 4);
    let ck = videossm::synthetic::random_checkpoint(&cfg, true, 99);
    let host: BTreeMap<String, Vec<f32>> = ck.tensors.iter().map(|(k, t)| (k.clone(), t.to_f32())).collect();
    let mut rng = Rng::new(5);
    let context = rng.normals(cfg.text_len * cfg.text_dim, 1.0);
    let mut r = Reference::new(ref_config(&cfg, fpb, h, w, 0), host);
    r.set_context(&context);
    let weights = load::load(gpu(), &cfg, &ck, runtime::DType::F32, true).unwrap();
    let mut g = Generator::new(gpu().clone(), &weights, DitDims::new(&cfg, fpb, h, w), 7, 2, Default::default()).unwrap();
    g.set_context(&context).unwrap();
    let (ts, sigmas): (Vec<f32>, Vec<f32>) = GenerationConfig::default().schedule().into_iter().unzip();
    let len = fpb * cfg.in_dim * h * w;
    let (mut worst, mut latents) = (0f64, Vec::new());
    for c in 0..chunks {
        if switches.contains(&c) {
            let new = rng.normals(cfg.text_len * cfg.text_dim, 1.0);
            r.switch_prompt(&new, 0.0);
            g.switch_prompt(&new).unwrap();
        }
        let noise = rng.normals(len, 1.0);
        let draws: Vec<Vec<f32>> = (0..ts.len()).map(|_| rng.normals(len, 1.0)).collect();
        let mut want = Vec::new();
        let x_ref = denoise_chunk(&mut r, &ts, &sigmas, 0.0, noise.clone(), |s| draws[s].clone(), |_, f, _| want.push(f.to_vec())).unwrap();
        let mut got = Vec::new();
        let x_gpu = denoise_chunk(&mut g, &ts, &sigmas, 0.0, noise, |s| draws[s].clone(), |_, f, _| got.push(f.to_vec())).unwrap();
        for (s, (a, b)) in got.iter().zip(&want).enumerate() {
            let e = err_over_std(a, b);
            worst = worst.max(e);
            assert!(e < 1e-3, "chunk {c} step {s}: GPU flow {e:.3e} × std from the f64 reference");
        }
        assert!(err_over_std(&x_gpu, &x_ref) < 1e-3, "chunk {c} latents");
        latents.extend(x_gpu);
    }
    (worst, latents)
}

#[test]
fn gpu_generator_matches_the_reference_over_22_chunks() {
    let (worst, _) = compare(22, &[]);
    println!("22 chunks with window 7, sinks 2, memory on: worst flow error {worst:.3e} × std");
}

#[test]
fn prompt_switches_refresh_the_window_like_the_reference() {
    let (worst, switched) = compare(12, &[5, 9]);
    println!("12 chunks with prompt switches before chunks 5 and 9: worst flow error {worst:.3e} × std");
    let (_, straight) = compare(12, &[]);
    let n = switched.len() / 12;
    assert_eq!(switched[..5 * n], straight[..5 * n], "chunks before the switch must not change");
    assert!(err_over_std(&switched[5 * n..6 * n], &straight[5 * n..6 * n]) > 1e-2, "a new prompt must change the next chunk");
}

#[test]
fn snapshot_and_resume_continue_the_same_video() {
    for memory_type in ["gated_linear", "gated_delta"] {
        snapshot_and_resume(memory_type, CompileOptions::default());
    }
}

#[test]
fn snapshot_and_resume_with_f16_kv_caches() {
    if !gpu().caps.f16 {
        eprintln!("f16 KV caches: skipped, this adapter has no shader-f16");
        return;
    }
    for memory_type in ["gated_linear", "gated_delta"] {
        snapshot_and_resume(memory_type, CompileOptions { kv_f16: Some(true), ..Default::default() });
    }
}

/// 7 chunks straight = 3 chunks, snapshot to disk, a fresh session restored, 4 more;
/// and a prompt switch re-caches the window but keeps S and the frame index (MEMORY.md B.4).
fn snapshot_and_resume(memory_type: &str, opts: CompileOptions) {
    let cfg = {
        let mut c = DitConfig::load(&parity_dir("dit-memory").join("config.json")).unwrap();
        (c.local_attn_size, c.sink_size) = (7, 2);
        // B.6: a horizon of 9 frames, so the router still opens after the resume point.
        (c.memory_type, c.memory_horizon) = (memory_type.into(), Some(9));
        c
    };
    let (fpb, h, w) = (2, 4, 4);
    let weights = load::load(gpu(), &cfg, &videossm::synthetic::random_checkpoint(&cfg, true, 4), runtime::DType::F32, true).unwrap();
    let new_session = || Generator::new(gpu().clone(), &weights, DitDims::new(&cfg, fpb, h, w), 7, 2, opts).unwrap();
    let (ts, sigmas): (Vec<f32>, Vec<f32>) = GenerationConfig::default().schedule().into_iter().unzip();
    let mut rng = Rng::new(8);
    let context = rng.normals(cfg.text_len * cfg.text_dim, 1.0);
    let len = fpb * cfg.in_dim * h * w;
    let draws: Vec<Vec<Vec<f32>>> = (0..7).map(|_| (0..=ts.len()).map(|_| rng.normals(len, 1.0)).collect()).collect();
    let run = |g: &mut Generator, chunks: std::ops::Range<usize>| -> Vec<f32> {
        chunks
            .flat_map(|c| denoise_chunk(g, &ts, &sigmas, 0.0, draws[c][0].clone(), |s| draws[c][s].clone(), |_, _, _| {}).unwrap())
            .collect()
    };
    let mut straight = new_session();
    straight.set_context(&context).unwrap();
    let all = run(&mut straight, 0..7);
    let mut first = new_session();
    first.set_context(&context).unwrap();
    let mut resumed = run(&mut first, 0..3);
    let kv = if opts.kv_f16 == Some(true) { "kv16" } else { "kv" };
    let path = std::env::temp_dir().join(format!("videossm-snapshot-{memory_type}-{kv}-{}.safetensors", std::process::id()));
    videossm::snapshot::save(&path, &first.snapshot().unwrap()).unwrap();
    drop(first);
    let mut second = new_session();
    second.restore(&videossm::snapshot::load(&path).unwrap()).unwrap();
    assert_eq!(second.frame0(), 6, "{memory_type}: the frame index travels with the snapshot");
    resumed.extend(run(&mut second, 3..7));
    assert_eq!(resumed, all, "{memory_type}: a resumed video must be bit-identical to the straight one");
    let states = |g: &Generator| -> Vec<(String, Vec<f32>)> {
        let state = |k: &str| k.ends_with("memory.state") || k.ends_with("memory.delta_state");
        g.snapshot().unwrap().tensors.into_iter().filter(|(k, ..)| state(k)).map(|(k, _, v)| (k, v)).collect()
    };
    let before = states(&second);
    assert!(before.len() == 2 && before.iter().all(|(_, s)| s.iter().any(|&x| x != 0.0)), "{memory_type}: S after 7 chunks");
    second.switch_prompt(&rng.normals(cfg.text_len * cfg.text_dim, 1.0)).unwrap();
    assert_eq!(second.frame0(), 14, "{memory_type}: a prompt switch keeps the frame index");
    assert_eq!(states(&second), before, "{memory_type}: a prompt switch keeps S");
    // A snapshot of another shape is refused with the tensor at fault.
    let other = Generator::new(gpu().clone(), &weights, DitDims::new(&cfg, fpb, 4, 6), 7, 2, opts);
    let e = other.unwrap().restore(&videossm::snapshot::load(&path).unwrap()).unwrap_err().to_string();
    assert!(e.contains("cache_k"), "{e}");
    std::fs::write(&path, b"not a snapshot").unwrap();
    assert!(videossm::snapshot::load(&path).is_err());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_snapshot_of_the_other_memory_form_is_refused() {
    // Same shapes, other meaning of S: restoring B.3's state into B.6 names the tensor.
    let session = |memory_type: &str| {
        let mut c = DitConfig::load(&parity_dir("dit-memory").join("config.json")).unwrap();
        (c.memory_type, c.memory_horizon) = (memory_type.into(), Some(9));
        let w = load::load(gpu(), &c, &videossm::synthetic::random_checkpoint(&c, true, 4), runtime::DType::F32, true).unwrap();
        Generator::new(gpu().clone(), &w, DitDims::new(&c, 3, 4, 4), 9, 3, Default::default()).unwrap()
    };
    let (mut b3, mut b6) = (session("gated_linear"), session("gated_delta"));
    let e = b6.restore(&b3.snapshot().unwrap()).unwrap_err().to_string();
    assert!(e.contains("blocks.0.memory.delta_state"), "{e}");
    let e = b3.restore(&b6.snapshot().unwrap()).unwrap_err().to_string();
    assert!(e.contains("blocks.0.memory.state"), "{e}");
}

#[test]
fn snapshots_restore_across_the_kv_cache_dtype() {
    // Snapshots hold f32 values: one made with f16 caches restores exactly into f32
    // caches, one made with f32 caches into f16 caches rounded as the device would have
    // written them; either session then continues the video.
    if !gpu().caps.f16 {
        eprintln!("f16 KV caches: skipped, this adapter has no shader-f16");
        return;
    }
    let mut cfg = DitConfig::load(&parity_dir("dit-memory-gd").join("config.json")).unwrap();
    (cfg.local_attn_size, cfg.sink_size) = (7, 2);
    let (fpb, h, w) = (2, 4, 4);
    let weights = load::load(gpu(), &cfg, &videossm::synthetic::random_checkpoint(&cfg, true, 6), runtime::DType::BF16, true).unwrap();
    let session = |kv_f16| {
        let opts = CompileOptions { kv_f16: Some(kv_f16), ..Default::default() };
        Generator::new(gpu().clone(), &weights, DitDims::new(&cfg, fpb, h, w), 7, 2, opts).unwrap()
    };
    let (ts, sigmas): (Vec<f32>, Vec<f32>) = GenerationConfig::default().schedule().into_iter().unzip();
    let mut rng = Rng::new(9);
    let context = rng.normals(cfg.text_len * cfg.text_dim, 1.0);
    let len = fpb * cfg.in_dim * h * w;
    let draws: Vec<Vec<f32>> = (0..=ts.len()).map(|_| rng.normals(len, 1.0)).collect();
    let chunks = |g: &mut Generator, n: usize| {
        (0..n)
            .flat_map(|_| denoise_chunk(g, &ts, &sigmas, 0.0, draws[0].clone(), |s| draws[s].clone(), |_, _, _| {}).unwrap())
            .collect::<Vec<_>>()
    };
    let cache = |k: &str| ["cache_k", "cache_v", "ctx_k", "ctx_v"].iter().any(|c| k.ends_with(c));
    for from_f16 in [true, false] {
        let mut a = session(from_f16);
        a.set_context(&context).unwrap();
        chunks(&mut a, 4);
        let snap = a.snapshot().unwrap();
        let mut b = session(!from_f16);
        b.restore(&snap).unwrap();
        for ((k, _, want), (_, _, got)) in snap.tensors.iter().zip(&b.snapshot().unwrap().tensors) {
            let rounded: Vec<f32> = want.iter().map(|&x| if !from_f16 && cache(k) { runtime::DType::F16.round(x) } else { x }).collect();
            assert_eq!(got, &rounded, "{k}: restored from {} caches", if from_f16 { "f16" } else { "f32" });
        }
        // Both continue the video, to within what the caches' dtype changes (nothing at
        // all with VIDEOSSM_KERNELS=gpu: f16 attention tiles round K/V as f16 caches do,
        // and the k̂ evicted in these two chunks were restored alike).
        let (x_a, x_b) = (chunks(&mut a, 2), chunks(&mut b, 2));
        let e = err_over_std(&x_b, &x_a);
        println!(
            "after a restore from {} into {} caches: 2 more chunks differ by {e:.2e} × std",
            ["f32", "f16"][from_f16 as usize],
            ["f32", "f16"][!from_f16 as usize]
        );
        assert!(e < 2e-2, "{e:.3e} × std");
    }
}
