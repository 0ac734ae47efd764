//! The streaming VAE decoder at the vae-small bundle's config (lavapipe-sized):
//! decode time per latent chunk (1 and 4 latent frames after the first), the
//! slowest steps of a chunk, and the device memory over 50 chunks, which must stay
//! flat: one compiled graph per chunk length, caches of constant size.
use criterion::{criterion_group, criterion_main, Criterion};
use graph::models::vae::VaeDecoder;
use runtime::{DType, Gpu, GpuOptions};
use std::sync::Arc;
use std::time::Instant;
use videossm_suite::{gpu, parity_dir, random_vae_checkpoint, Rng};
use weights::{Checkpoint, VaeConfig};

fn bench(c: &mut Criterion) {
    let dir = parity_dir("vae-small");
    let cfg = VaeConfig::load(&dir.join("config.json")).unwrap();
    let ck = Checkpoint::open(dir.join("vae.safetensors")).unwrap();
    let (h, w) = (4, 6);
    let mut vae = VaeDecoder::load(gpu().clone(), &ck, &cfg, DType::F32, h, w).unwrap();
    let mut rng = Rng::new(1);
    let per = cfg.z_dim * h * w;
    let first = rng.normals(per, 1.0);
    vae.decode(&first, 1).unwrap();

    let mut group = c.benchmark_group("vae_small");
    group.sample_size(10);
    for frames in [1usize, 4] {
        let latents = rng.normals(frames * per, 1.0);
        vae.decode(&latents, frames).unwrap();
        group.bench_function(format!("decode_chunk_{frames}_latent_frames"), |b| b.iter(|| vae.decode(&latents, frames).unwrap()));
    }
    group.finish();

    let profile = vae.compiled(false, 4).unwrap().profile(gpu()).unwrap();
    let total: f64 = profile.iter().map(|p| p.1.ms).sum();
    let mut top = profile.clone();
    top.sort_by(|a, b| b.1.ms.total_cmp(&a.1.ms));
    println!("chunk of 4 latent frames: {total:.1} ms GPU over {} steps; slowest:", profile.len());
    for (label, t) in top.iter().take(6) {
        println!("  {:8.2} ms  {label} ({})", t.ms, t.kernel);
    }

    // 50 chunks of 4: the planned memory of a chunk and the caches never grow.
    let latents = rng.normals(4 * per, 1.0);
    let before = vae.memory(4).unwrap();
    for _ in 0..50 {
        vae.decode(&latents, 4).unwrap();
    }
    let after = vae.memory(4).unwrap();
    assert_eq!(before, after, "chunk memory changed over 50 chunks");
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "per chunk of 4 latent frames, flat over 50 chunks: activations {:.2} MiB (largest tensor {:.2} MiB), caches {:.2} MiB, weights {:.2} MiB",
        mib(after.activation_bytes),
        mib(after.largest_tensor_bytes),
        mib(after.cache_bytes),
        mib(after.weight_bytes)
    );
}

/// The full-size Wan2.1 VAE decoder (dim 96, dim_mult [1, 2, 4, 4], 2 residual
/// blocks, bf16 weights as the pipeline loads them) at 480×832 (60×104 latents),
/// planned on this adapter without allocating activations or caches: the row bands
/// it needs and the memory of a chunk of 1 latent frame (4 video frames) and of the
/// longest chunk that fits.
fn full_size_memory() {
    let cfg = VaeConfig::wan2_1();
    let ck = random_vae_checkpoint(&cfg, 3);
    let vae = VaeDecoder::load(gpu().clone(), &ck, &cfg, DType::BF16, 60, 104).unwrap();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let mut chunks = vec![1, vae.chunk_limit()];
    chunks.dedup();
    for frames in chunks {
        let m = vae.memory(frames).unwrap();
        println!(
            "full-size decoder, 480x832, {frames} latent frame(s) a chunk, {} row bands: activations {:.0} MiB planned (largest tensor {:.1} MiB vs a {:.0} MiB binding), caches {:.0} MiB, weights {:.0} MiB bf16",
            m.bands,
            mib(m.activation_bytes),
            mib(m.largest_tensor_bytes),
            mib(gpu().max_binding()),
            mib(m.cache_bytes),
            mib(m.weight_bytes)
        );
    }
}

/// Wall time (graph build and shader compile included in the first frame only) of
/// the first latent frame and of a chunk of one latent frame of `cfg` at `h×w`
/// latents, with bindings capped at `cap` bytes, and the device memory after it.
fn timed_decode(what: &str, cfg: &VaeConfig, ck: &Checkpoint, dtype: DType, (h, w): (usize, usize), cap: Option<u64>) {
    let gpu = Arc::new(Gpu::new(&GpuOptions { max_binding: cap, ..GpuOptions::from_env() }).unwrap());
    let mut vae = VaeDecoder::load(gpu.clone(), ck, cfg, dtype, h, w).unwrap();
    let per = cfg.z_dim * h * w;
    let latents = Rng::new(4).normals(2 * per, 1.0);
    let t0 = Instant::now();
    vae.decode(&latents[..per], 1).unwrap();
    let first = t0.elapsed();
    vae.decode(&latents[per..], 1).unwrap(); // compiles the chunk graph
    let t1 = Instant::now();
    vae.decode(&latents[per..], 1).unwrap();
    let allocated = gpu.memory().map_or("n/a".into(), |m| format!("{:.1} MiB", m.allocated as f64 / (1 << 20) as f64));
    println!(
        "{what}, {} row band(s): first frame {:.2} s, a latent frame ({} video frames) {:.2} s, GPU memory {allocated}",
        vae.memory(1).unwrap().bands,
        first.as_secs_f64(),
        vae.output_frames(1),
        t1.elapsed().as_secs_f64()
    );
}

/// The full-size decoder run for real at 48×64 (6×8 latents; 480×832 is 130× the
/// pixels and about as much more work), and vae-small whole and in row bands.
fn decode_times() {
    let cfg = VaeConfig::wan2_1();
    timed_decode("full-size decoder at 48x64, bf16", &cfg, &random_vae_checkpoint(&cfg, 3), DType::BF16, (6, 8), None);
    let dir = parity_dir("vae-small");
    let cfg = VaeConfig::load(&dir.join("config.json")).unwrap();
    let ck = Checkpoint::open(dir.join("vae.safetensors")).unwrap();
    for cap in [None, Some(160 << 10)] {
        timed_decode(&format!("vae-small at 32x48, bindings {cap:?}"), &cfg, &ck, DType::F32, (4, 6), cap);
    }
}

fn benches(c: &mut Criterion) {
    full_size_memory();
    decode_times();
    bench(c);
}

criterion_group!(all, benches);
criterion_main!(all);
