//! Attention, SSM memory and causal conv3d labs at the model's shapes, scaled to what
//! lavapipe runs in seconds. Throughput is reported as flops (criterion's elem/s).
//! Napkin math:
//! - attention: 4·tq·tk·H·d (QKᵀ and PV). Full size is 4680 queries over a 9-frame
//!   window of 1560-token frames (tk = 14040), 12 heads of 128: 403 GFLOP per call;
//!   here 780 queries (3 frames of 260 tokens) over 9 frames (2340 keys), 12 × 128.
//! - SSM scan: 4·T·H·d² (decay + rank-1 update per evicted token): one chunk of 780
//!   evicted tokens; read: 2·T·H·d². B.6's delta rule: 4·T·H·d² too (S k̂, then the
//!   rank-1 update), token by token or chunked (prepare ≈ 2.5·T·C·H·d for the C×C
//!   solve and W, Ũ; update 4·T·H·d²); its read adds the RMSNorm, gate and router.
//! - conv3d: 2·F·H·W·Cin·Cout·27 for the VAE's 3×3×3 convs: the last decoder stage's
//!   96 → 96 channels on a 30×52 tile of 4 frames (the full 480×832 frame is 256 tiles).
mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use runtime::kernels::attention::{Attention, Params as AttnParams};
use runtime::kernels::conv3d::{Conv3d, Params as ConvParams};
use runtime::kernels::matmul::{Act, Matmul, Params as MatmulParams, Residual};
use runtime::kernels::ssm_scan::{Params as SsmParams, Ssm};
use runtime::{Capabilities, DType, DeviceKind};
use videossm_suite::{gpu, Rng};

fn attention(c: &mut Criterion, rng: &mut Rng) {
    let gpu = gpu();
    let (frame, frames, h, d) = (260usize, 9usize, 12usize, 128usize);
    let (tq, tk) = (3 * frame, frames * frame);
    let up = |n: &str, len: usize, rng: &mut Rng| gpu.upload(n, &[len], DType::F32, &rng.normals(len, 1.0)).unwrap();
    let (q, k, v) = (up("q", tq * h * d, rng), up("k", tk * h * d, rng), up("v", tk * h * d, rng));
    let o = gpu.empty("o", &[tq * h * d], DType::F32).unwrap();
    // Three sink frames, then the window wrapped around the ring: the session's layout.
    let ranges = [0.0, (3 * frame) as f32, (6 * frame) as f32, tk as f32, (3 * frame) as f32, (6 * frame) as f32];
    let r = gpu.upload("ranges", &[6], DType::U32, &ranges).unwrap();
    let p = AttnParams::dense(tq, h, d, 3, 1.0 / (d as f32).sqrt());
    let flops = 4 * tq * tk * h * d;
    // The CPU adapters' schedule beside the tiles a GPU with this adapter's f16, subgroups
    // and workgroup memory would get, over f32 K/V and, with f16, over an f16 KV cache
    // (half the bytes per key: 2·H·d·2 B instead of 2·H·d·4 B).
    let as_gpu = Capabilities { device_type: DeviceKind::Gpu, ..gpu.caps };
    let mut kernels = vec![
        (Attention::new(d, false), k.clone(), v.clone()),
        (Attention::for_device(&as_gpu, d, false, DType::F16, DType::F32), k.clone(), v.clone()),
    ];
    if gpu.caps.f16 {
        let half = |n: &str, t: &runtime::Tensor| gpu.upload(n, &t.shape, DType::F16, &gpu.download(t).unwrap()).unwrap();
        let (k16, v16) = (half("k16", &k), half("v16", &v));
        for caps in [gpu.caps, as_gpu] {
            kernels.push((Attention::for_device(&caps, d, false, DType::F16, DType::F16), k16.clone(), v16.clone()));
        }
    }
    for (k_, kt, vt) in &kernels {
        common::time(
            c,
            "families",
            BenchmarkId::new(&k_.to_string(), &format!("{tq}q_{tk}k_{h}x{d}")),
            Throughput::Elements(flops as u64),
            k_,
            &p,
            &[&q, kt, vt, &r, &o],
        );
    }
}

fn ssm(c: &mut Criterion, rng: &mut Rng) {
    let gpu = gpu();
    // `VIDEOSSM_BENCH_SSM_TOKENS=N`: evicted tokens of the scans and tokens of the reads
    // (one 1560-token frame of the full size is 1560, a whole chunk 4680).
    let t = std::env::var("VIDEOSSM_BENCH_SSM_TOKENS").ok().and_then(|v| v.parse().ok()).unwrap_or(780usize);
    let (h, d) = (12usize, 128usize);
    let up = |n: &str, len: usize, rng: &mut Rng, s: f32| gpu.upload(n, &[len], DType::F32, &rng.normals(len, s)).unwrap();
    let (khat, v) = (up("khat", t * h * d, rng, 0.1), up("v", t * h * d, rng, 1.0));
    let gates: Vec<f32> = (0..t * h).map(|_| 0.5 + 0.4 * rng.uniform() as f32).collect();
    let beta = gpu.upload("beta", &[t * h], DType::F32, &gates).unwrap();
    let decay = gpu.upload("decay", &[t * h], DType::F32, &gates).unwrap();
    let state = gpu.empty("S", &[h * d * d], DType::F32).unwrap();
    let shape = format!("{t}x{h}x{d}");
    let scan = SsmParams::scan(h, d, &[0..t]);
    common::time(
        c,
        "families",
        BenchmarkId::new("ssm_scan", &shape),
        Throughput::Elements((4 * t * h * d * d) as u64),
        &Ssm::Scan { f16: false },
        &scan,
        &[&khat, &v, &beta, &decay, &state],
    );
    let (y, out) = (up("y", t * h * d, rng, 1.0), gpu.empty("out", &[t * h * d], DType::F32).unwrap());
    let read = SsmParams::tokens(t, h, d);
    common::time(
        c,
        "families",
        BenchmarkId::new("ssm_read", &shape),
        Throughput::Elements((2 * t * h * d * d) as u64),
        &Ssm::read_for(&gpu.caps, false),
        &read,
        &[&y, &state, &khat, &beta, &out],
    );
    let delta = 4 * t * h * d * d;
    common::time(
        c,
        "families",
        BenchmarkId::new("ssm_delta_step", &shape),
        Throughput::Elements(delta as u64),
        &Ssm::DeltaStep { f16: false },
        &scan,
        &[&khat, &v, &beta, &decay, &state],
    );
    let chunk = 64;
    let (w, u, g) = (up("w", t * h * d, rng, 0.0), up("u", t * h * d, rng, 0.0), up("g", t * h, rng, 0.0));
    let prepare = Ssm::DeltaPrepare { chunk, f16: false };
    let flops = (5 * t * chunk as usize * h * d / 2) as u64;
    common::time(
        c,
        "families",
        BenchmarkId::new(prepare.to_string(), &shape),
        Throughput::Elements(flops),
        &prepare,
        &scan,
        &[&khat, &v, &beta, &decay, &w, &u, &g],
    );
    let update = Ssm::DeltaUpdate { chunk };
    common::time(
        c,
        "families",
        BenchmarkId::new(update.to_string(), &shape),
        Throughput::Elements(delta as u64),
        &update,
        &scan,
        &[&khat, &w, &u, &g, &state],
    );
    // B.6 read: 3-frame chunk (260 tokens a frame), gate slot 2 of a [3, 6D] modulation.
    let (gate, consts, ln_rho, modulation) = (
        up("gate", t * h * d, rng, 1.0),
        up("consts", d + 2 * h * d, rng, 1.0),
        up("ln_rho", 3, rng, 1.0),
        up("mod", 3 * 6 * h * d, rng, 1.0),
    );
    let read = SsmParams::read_delta(t, h, d, t / 3, 6 * h * d, 2 * h * d, 1e-6);
    common::time(
        c,
        "families",
        BenchmarkId::new("ssm_read_delta", &shape),
        Throughput::Elements((2 * t * h * d * d) as u64),
        &Ssm::read_for(&gpu.caps, true),
        &read,
        &[&y, &state, &khat, &gate, &consts, &ln_rho, &modulation, &out],
    );
}

fn conv3d(c: &mut Criterion, rng: &mut Rng) {
    let gpu = gpu();
    let (frames, hh, ww, ch) = (4usize, 30usize, 52usize, 96usize);
    let frame = hh * ww * ch;
    let up = |n: &str, len: usize, dt: DType, rng: &mut Rng| gpu.upload(n, &[len], dt, &rng.normals(len, 0.05)).unwrap();
    let (cache, src, bias) =
        (up("cache", 2 * frame, DType::F32, rng), up("src", frames * frame, DType::F32, rng), up("bias", ch, DType::F32, rng));
    let y = gpu.empty("y", &[frames * frame], DType::F32).unwrap();
    let p = ConvParams::new(frames, hh, ww, ch, ch, (3, 3, 3), false);
    let flops = 2 * frames * hh * ww * ch * ch * 27;
    for w_dtype in [DType::F32, DType::BF16] {
        let w = up("w", ch * ch * 27, w_dtype, rng);
        // The register tiling (CPU adapters) beside the GPUs' workgroup blocks.
        let register = Conv3d::new(w_dtype, false, false, ch);
        for k in [register, Conv3d { workgroup: true, ..register }] {
            common::time(
                c,
                "families",
                BenchmarkId::new(&k.to_string(), &format!("{frames}x{hh}x{ww}x{ch}")),
                Throughput::Elements(flops as u64),
                &k,
                &p,
                &[&cache, &src, &w, &bias, &y],
            );
        }
    }
    // Yardstick: the tuned matmul on the same flops as an explicit im2col GEMM.
    let (m, n, kk) = (frames * hh * ww, ch, 27 * ch);
    let mp = MatmulParams::dense(m, n, kk);
    let mm = Matmul::for_device(&gpu.caps, DType::F32, false, Act::None, Residual::None, &mp);
    let (x, w) = (up("im2col", m * kk, DType::F32, rng), up("w", n * kk, DType::F32, rng));
    let id = BenchmarkId::new(&mm.to_string(), &format!("{m}x{n}x{kk}"));
    common::time(c, "families", id, Throughput::Elements(flops as u64), &mm, &mp, &[&x, &w, &y]);
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng::new(3);
    attention(c, &mut rng);
    ssm(c, &mut rng);
    conv3d(c, &mut rng);
}

criterion_group!(benches, bench);
criterion_main!(benches);
