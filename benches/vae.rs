//! The streaming VAE decoder at the vae-small bundle's config (lavapipe-sized):
//! decode time per latent chunk (1 and 4 latent frames after the first), the
//! slowest steps of a chunk, and the device memory over 50 chunks, which must stay
//! flat: one compiled graph per chunk length, caches of constant size.
use criterion::{criterion_group, criterion_main, Criterion};
use graph::models::vae::VaeDecoder;
use runtime::DType;
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
    let total: f64 = profile.iter().map(|p| p.2).sum();
    let mut top = profile.clone();
    top.sort_by(|a, b| b.2.total_cmp(&a.2));
    println!("chunk of 4 latent frames: {total:.1} ms GPU over {} steps; slowest:", profile.len());
    for (label, variant, ms) in top.iter().take(6) {
        println!("  {ms:8.2} ms  {label} ({variant})");
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
/// blocks) at 480×832 (60×104 latents), per chunk of one latent frame (4 video
/// frames). Planned at 6×8 latents and scaled by 130: every activation and cache is
/// proportional to the pixel count (and lavapipe could not even bind the real caches).
fn full_size_memory() {
    let cfg = VaeConfig::wan2_1();
    let mut vae = VaeDecoder::load(gpu().clone(), &random_vae_checkpoint(&cfg, 3), &cfg, DType::F32, 6, 8).unwrap();
    let m = vae.memory(1).unwrap();
    let (scale, gib) = ((60 * 104 / 48) as u64, |b: u64| b as f64 / (1u64 << 30) as f64);
    println!(
        "full-size decoder, 480x832, per chunk of 1 latent frame: activations {:.2} GiB planned (largest tensor {:.0} MiB vs a {:.0} MiB binding limit), caches {:.2} GiB, weights {:.2} GiB f32",
        gib(m.activation_bytes * scale),
        (m.largest_tensor_bytes * scale) as f64 / (1 << 20) as f64,
        gpu().max_binding() as f64 / (1 << 20) as f64,
        gib(m.cache_bytes * scale),
        gib(m.weight_bytes)
    );
}

fn benches(c: &mut Criterion) {
    full_size_memory();
    bench(c);
}

criterion_group!(all, benches);
criterion_main!(all);
