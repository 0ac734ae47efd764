//! The streaming VAE decoder: the vae-small bundle (whole and streamed, f32 and f16
//! weights), the f64 reference against the bundle, streamed == whole for uneven
//! chunkings, GPU vs reference at other configs (odd sizes, attention in a stage,
//! a 384-wide middle attention), and typed errors for latents that do not fit; row
//! bands forced by capped bindings (the reference, the too-small error) or taken for
//! an activation budget (the same video), the bundle frame by frame in small bindings,
//! and the full-size 480×832 decoder planned within 128 MiB bindings and under 1 GiB
//! of activations.
use graph::models::vae::{load, to_rgb8, VaeDecoder, VaeOptions};
use graph::GraphError;
use runtime::{DType, Gpu, GpuOptions, RuntimeError};
use std::sync::Arc;
use videossm::replay::{replay, ReplayOptions};
use videossm_suite::reference::vae::Reference;
use videossm_suite::{assert_close, err_over_std, gpu, load_host, parity_dir, random_vae_checkpoint, Rng};
use weights::{Checkpoint, VaeConfig};

fn check_bundle(gpu: Arc<Gpu>, wdtype: DType, tol: f64) {
    let dir = parity_dir("vae-small");
    let expected = load_host(&dir.join("expected.safetensors"));
    let got = replay(gpu, &dir, ReplayOptions { wdtype, memory: true, ..Default::default() }).unwrap();
    for key in ["video", "video_streamed"] {
        let (shape, want) = &expected[key];
        let (gshape, g) = got.get(key).unwrap_or_else(|| panic!("replay did not produce {key}"));
        assert_eq!(gshape, shape, "{key} shape");
        let e = err_over_std(g, want);
        println!("vae-small {key} ({wdtype}): max|err| = {e:.3e} × std");
        assert!(e <= tol, "vae-small {key} ({wdtype}): max|err| = {e:.3e} × std (allowed {tol:e})");
    }
}

#[test]
fn vae_small_f32() {
    check_bundle(gpu().clone(), DType::F32, 1e-3);
}

#[test]
fn vae_small_f16_weights() {
    check_bundle(gpu().clone(), DType::F16, 2e-2);
}

#[test]
fn f16_caches_move_the_bundle_by_little() {
    // 16-bit weights keep the frame caches in f16 by default: measured against f32 caches.
    let dir = parity_dir("vae-small");
    let expected = load_host(&dir.join("expected.safetensors"));
    for wdtype in [DType::F16, DType::BF16] {
        let run = |kv_f16| replay(gpu().clone(), &dir, ReplayOptions { wdtype, kv_f16: Some(kv_f16), ..Default::default() }).unwrap();
        let (f32c, f16c) = (run(false), run(true));
        for key in ["video", "video_streamed"] {
            let want = &expected[key].1;
            let (e32, e16, moved) =
                (err_over_std(&f32c[key].1, want), err_over_std(&f16c[key].1, want), err_over_std(&f16c[key].1, &f32c[key].1));
            println!("vae-small {key} {wdtype}: f32 caches {e32:.3e}, f16 caches {e16:.3e} × std; moved by {moved:.3e}");
            assert!(moved <= 2e-2, "{key} {wdtype}: f16 caches moved the video by {moved:.3e} × std");
        }
    }
}

#[test]
fn reference_reproduces_the_bundle() {
    let dir = parity_dir("vae-small");
    let cfg = VaeConfig::load(&dir.join("config.json")).unwrap();
    let w = load_host(&dir.join("vae.safetensors")).into_iter().map(|(k, (_, v))| (k, v)).collect();
    let (shape, latents) = load_host(&dir.join("inputs.safetensors")).remove("latents").unwrap();
    let video = Reference::new(cfg, w).decode(&latents, shape[0], shape[2], shape[3]);
    let e = err_over_std(&video, &load_host(&dir.join("expected.safetensors"))["video"].1);
    println!("reference vs vae-small: {e:.3e} × std");
    assert!(e <= 1e-5, "reference: {e:.3e} × std");
}

fn config(dim: usize, z: usize, mult: &[usize], res: usize, attn: &[f64], temporal: &[bool]) -> VaeConfig {
    let mut rng = Rng::new(7);
    VaeConfig {
        dim,
        z_dim: z,
        dim_mult: mult.to_vec(),
        num_res_blocks: res,
        attn_scales: attn.to_vec(),
        temperal_downsample: temporal.to_vec(),
        dropout: 0.0,
        latent_mean: rng.normals(z, 0.5),
        latent_std: rng.normals(z, 0.3).iter().map(|v| 1.0 + v.abs()).collect(),
        streamed_chunks: None,
    }
}

fn decoder(cfg: &VaeConfig, ck: &Checkpoint, h: usize, w: usize) -> VaeDecoder {
    VaeDecoder::load(gpu().clone(), ck, cfg, DType::F32, h, w).unwrap()
}

/// The test adapter with storage bindings capped at `cap` bytes.
fn capped(cap: u64) -> Arc<Gpu> {
    let g = Gpu::new(&GpuOptions { max_binding: Some(cap), ..GpuOptions::from_env() }).unwrap();
    assert_eq!(g.max_binding(), cap);
    Arc::new(g)
}

/// GPU (whole, then streamed in `chunks`) vs the f64 reference on random weights.
fn against_reference(cfg: &VaeConfig, frames: usize, h: usize, w: usize, chunks: &[usize], seed: u64) {
    against_reference_on(gpu().clone(), cfg, frames, h, w, chunks, seed);
}

/// [`against_reference`] on `gpu`; returns the row bands the decoder used.
fn against_reference_on(gpu: Arc<Gpu>, cfg: &VaeConfig, frames: usize, h: usize, w: usize, chunks: &[usize], seed: u64) -> usize {
    let ck = random_vae_checkpoint(cfg, seed);
    let latents = Rng::new(seed + 1).normals(frames * cfg.z_dim * h * w, 1.0);
    let weights = ck.tensors.iter().map(|(k, t)| (k.clone(), t.to_f32())).collect();
    let want = Reference::new(cfg.clone(), weights).decode(&latents, frames, h, w);
    let mut vae = VaeDecoder::load(gpu, &ck, cfg, DType::F32, h, w).unwrap();
    let bands = vae.memory(1).unwrap().bands;
    let got = vae.decode_shaped(&latents, &[frames, cfg.z_dim, h, w]).unwrap();
    let e = err_over_std(&got, &want);
    println!("{:?} x{} {h}x{w}, {frames} frames, {bands} row band(s): GPU vs reference {e:.3e} × std", cfg.dim_mult, cfg.dim);
    assert!(e <= 1e-4, "GPU vs reference: {e:.3e} × std");
    vae.reset().unwrap();
    let per = cfg.z_dim * h * w;
    let (mut streamed, mut start) = (Vec::new(), 0);
    for &n in chunks {
        streamed.extend(vae.decode(&latents[start * per..(start + n) * per], n).unwrap());
        start += n;
    }
    assert_close(&format!("streamed {chunks:?}"), &streamed, &got, 1e-6, 1e-6);
    bands
}

#[test]
fn odd_sizes_attention_in_a_stage_and_temporal_last() {
    // Stage 0 (scale 1/2) has an attention block; the temporal upsample is in stage 1.
    let cfg = config(4, 4, &[1, 2, 2], 0, &[0.5], &[true, false]);
    against_reference(&cfg, 4, 3, 5, &[1, 1, 2], 11);
}

#[test]
fn wide_middle_attention_384() {
    // dims [384, 384, 4]: the middle attention's head dim is the full-size VAE's 384.
    let cfg = config(4, 16, &[1, 96], 0, &[], &[true]);
    against_reference(&cfg, 2, 2, 3, &[1, 1], 12);
}

#[test]
fn streamed_equals_whole_on_the_bundle() {
    let dir = parity_dir("vae-small");
    let cfg = VaeConfig::load(&dir.join("config.json")).unwrap();
    let ck = Checkpoint::open(dir.join("vae.safetensors")).unwrap();
    let (shape, latents) = load_host(&dir.join("inputs.safetensors")).remove("latents").unwrap();
    let mut vae = decoder(&cfg, &ck, shape[2], shape[3]);
    let whole = vae.decode_shaped(&latents, &shape).unwrap();
    let per = latents.len() / shape[0];
    for chunks in [vec![2, 3], vec![1, 1, 1, 2], vec![1, 2, 1, 1]] {
        vae.reset().unwrap();
        let (mut streamed, mut start) = (Vec::new(), 0);
        for &n in &chunks {
            assert_eq!(vae.output_frames(n), if start == 0 { 1 + 4 * (n - 1) } else { 4 * n });
            streamed.extend(vae.decode(&latents[start * per..(start + n) * per], n).unwrap());
            start += n;
        }
        assert_close(&format!("streamed {chunks:?}"), &streamed, &whole, 1e-6, 1e-6);
    }
    // One graph per chunk length, reused: the first frame's, then lengths 4, 1, 3, 2.
    assert_eq!(vae.compiled_graphs(), 5);
    let rgb = to_rgb8(&whole);
    assert_eq!(rgb.len(), whole.len());
    assert!(whole.iter().zip(&rgb).all(|(&v, &p)| (((v + 1.0) * 127.5).round() as i32 - p as i32).abs() == 0));
}

#[test]
fn latents_that_do_not_fit_are_typed_errors() {
    let dir = parity_dir("vae-small");
    let cfg = VaeConfig::load(&dir.join("config.json")).unwrap();
    let ck = Checkpoint::open(dir.join("vae.safetensors")).unwrap();
    let mut vae = decoder(&cfg, &ck, 4, 6);
    let bad = |r: graph::Result<Vec<f32>>, what: &str| match r {
        Err(e @ GraphError::Input { .. }) => println!("{what}: {e}"),
        other => panic!("{what}: expected an Input error, got {:?}", other.map(|v| v.len())),
    };
    bad(vae.decode(&[], 0), "zero frames");
    bad(vae.decode(&vec![0.0; 16 * 4 * 6 + 1], 1), "length");
    bad(vae.decode(&vec![0.0; 16 * 4 * 6], usize::MAX), "overflowing frame count");
    bad(vae.decode_shaped(&vec![0.0; 8 * 4 * 6], &[1, 8, 4, 6]), "channels");
    bad(vae.decode_shaped(&vec![0.0; 16 * 4 * 7], &[1, 16, 4, 7]), "width");
    bad(vae.decode_shaped(&vec![0.0; 16 * 24], &[16, 4, 6]), "rank");
    // A failed call leaves the session usable.
    assert_eq!(vae.decode(&vec![0.0; 16 * 4 * 6], 1).unwrap().len(), 3 * 32 * 48);
}

#[test]
fn bundle_frame_by_frame_in_small_bindings() {
    // 112 KiB bindings: vae-small's last stage holds 4 frames × 32×48 × 8 channels, 192
    // KiB a latent frame, but runs one frame at a time past the temporal upsamples, so
    // its tensors (≤ 96 KiB) fit beside the conv weights (≤ 108 KiB) without row bands.
    let gpu = capped(112 << 10);
    let dir = parity_dir("vae-small");
    let cfg = VaeConfig::load(&dir.join("config.json")).unwrap();
    let ck = Checkpoint::open(dir.join("vae.safetensors")).unwrap();
    let mut banded = VaeDecoder::load(gpu.clone(), &ck, &cfg, DType::F32, 4, 6).unwrap();
    let m = banded.memory(1).unwrap();
    println!("vae-small with 112 KiB bindings: {} row bands, largest tensor {} B", m.bands, m.largest_tensor_bytes);
    assert!(m.bands == 1 && m.largest_tensor_bytes <= 96 << 10, "{m:?}");
    let (shape, latents) = load_host(&dir.join("inputs.safetensors")).remove("latents").unwrap();
    let whole = decoder(&cfg, &ck, 4, 6).decode_shaped(&latents, &shape).unwrap();
    assert_close("small bindings vs unlimited", &banded.decode_shaped(&latents, &shape).unwrap(), &whole, 1e-6, 1e-6);
    check_bundle(gpu, DType::F32, 1e-3);
}

#[test]
fn row_bands_match_the_reference_after_a_stage_attention() {
    // Odd sizes, uneven bands, bands starting after stage 0's attention, and as many
    // bands as latent rows. The 8→8 convs' weights (6.75 KiB) bound the cap from
    // below; the last stage holds 17.5 KiB a latent frame.
    let cfg = config(4, 4, &[1, 2, 2], 0, &[0.5], &[true, false]);
    for (cap, want) in [(12 << 10, 2), (7 << 10, 5)] {
        let bands = against_reference_on(capped(cap), &cfg, 4, 5, 7, &[1, 2, 1], 11);
        assert_eq!(bands, want, "{cap} B bindings");
    }
}

#[test]
fn bindings_too_small_for_one_band_are_a_limit_error() {
    let cfg = config(4, 4, &[1, 2, 2], 0, &[], &[true, false]);
    let ck = random_vae_checkpoint(&cfg, 5);
    match VaeDecoder::load(capped(8 << 10), &ck, &cfg, DType::F32, 2, 64) {
        Err(GraphError::Runtime(e @ RuntimeError::LimitExceeded { .. })) => {
            println!("{e}");
            let RuntimeError::LimitExceeded { what, limit, .. } = &e else { unreachable!() };
            assert!(what.contains("VAE tensor decoder.") && what.contains("2 row bands"), "{what}");
            assert_eq!(*limit, 8 << 10);
        }
        other => panic!("expected LimitExceeded, got {:?}", other.err()),
    }
}

#[test]
fn an_activation_budget_takes_more_row_bands_for_the_same_video() {
    // vae-small's layout with random weights at 24×6 latents: one band plans the most;
    // a budget below that takes more bands, a plan within it (one latent frame a call,
    // and the longest call the decoder makes), and the same video, streamed.
    let cfg = VaeConfig::load(&parity_dir("vae-small").join("config.json")).unwrap();
    let ck = random_vae_checkpoint(&cfg, 5);
    let (h, w) = (24, 6);
    let shape = [3, cfg.z_dim, h, w];
    let latents = Rng::new(9).normals(shape.iter().product(), 1.0);
    let budgeted = |activation_budget| {
        let weights = load::load(gpu(), &cfg, &ck, DType::F32).unwrap();
        VaeDecoder::new(gpu().clone(), weights, &cfg, h, w, VaeOptions { activation_budget, ..VaeOptions::default() }).unwrap()
    };
    let mut fewest = budgeted(None);
    let least = fewest.memory(1).unwrap();
    let budget = least.pooled_bytes * 4 / 5;
    let mut banded = budgeted(Some(budget));
    let (one, call) = (banded.memory(1).unwrap(), banded.memory(banded.chunk_limit()).unwrap());
    println!(
        "24x6 latents: {} band(s) pool {} B; budget {budget} B: {} bands, {} B ({} B for {} frame(s) a call)",
        least.bands,
        least.pooled_bytes,
        one.bands,
        one.pooled_bytes,
        call.pooled_bytes,
        banded.chunk_limit()
    );
    assert!(one.bands > least.bands && one.pooled_bytes <= budget && call.pooled_bytes <= budget, "{one:?} {call:?}");
    let want = fewest.decode_shaped(&latents, &shape).unwrap();
    let per = cfg.z_dim * h * w;
    let got = [banded.decode(&latents[..per], 1).unwrap(), banded.decode(&latents[per..], 2).unwrap()].concat();
    // Each band computes its rows from the same inputs as one band does (its halo rows
    // are copies): only the order of the dispatches differs. Measured bitwise equal.
    assert_close("budgeted bands vs one band", &got, &want, 1e-6, 1e-6);
    // A budget no band count meets is not an error: the smallest plan is taken.
    let starved = budgeted(Some(1)).memory(1).unwrap();
    assert!(starved.bands > 1 && starved.pooled_bytes <= one.pooled_bytes, "{starved:?}");
}

#[test]
fn full_size_480x832_plans_in_row_bands_within_128_mib_bindings() {
    // The real Wan2.1 decoder (random bf16 weights) at 60×104 latents: planned only,
    // nothing of the ~5.5 GiB of activations and caches is allocated.
    let gpu = Arc::new(Gpu::new(&GpuOptions { max_binding: Some(128 << 20), ..GpuOptions::from_env() }).unwrap());
    let cfg = VaeConfig::wan2_1();
    let vae = VaeDecoder::load(gpu.clone(), &random_vae_checkpoint(&cfg, 3), &cfg, DType::BF16, 60, 104).unwrap();
    let m = vae.memory(vae.chunk_limit()).unwrap();
    println!("480x832 on {} MiB bindings: {m:?}, {} latent frame(s) a chunk", gpu.max_binding() >> 20, vae.chunk_limit());
    assert_eq!(vae.video_size(), (480, 832));
    assert!(m.bands > 1 && m.largest_tensor_bytes <= gpu.max_binding(), "{m:?}");
    // Frame by frame past the temporal upsamples, depth first: 0.70 GiB planned in the
    // fewest bands (1.91 GiB for all 4 frames at once); an activation budget takes more.
    assert!(m.activation_bytes < 1 << 30, "{m:?}");
}
