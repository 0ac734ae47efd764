//! Memory-bound kernels lab: adaLN LayerNorm + modulation under each schedule, the
//! strided copy (contiguous rows and a transpose) and fill, at
//! the DiT's chunk size (3 frames of 30×52 patches = 4680 tokens × 1536).
//! Napkin math: bytes = what must cross memory once: x read + y written (4 B each per
//! element; the norm's second read of a 6 KB row comes from cache, the [F, 6, D]
//! modulation is 0.1% of x). GB/s = bytes / time.
mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use runtime::kernels::copy::{Copy, Fill, FillParams, Params as CopyParams};
use runtime::kernels::norm::{Norm, Params as NormParams, Scale, Schedule, Stat};
use runtime::DType;
use videossm_suite::{gpu, Rng};

const SHAPE: &str = "4680x1536";
const TOKENS: usize = 4680;
const D: usize = 1536;
const FRAMES: usize = 3;

fn bench(c: &mut Criterion) {
    let gpu = gpu();
    let mut rng = Rng::new(1);
    let n = TOKENS * D;
    let x = gpu.upload("x", &[n], DType::F32, &rng.normals(n, 1.0)).unwrap();
    let y = gpu.empty("y", &[n], DType::F32).unwrap();
    let modulation = gpu.upload("mod", &[FRAMES * 6 * D], DType::F32, &rng.normals(FRAMES * 6 * D, 0.1)).unwrap();

    let mut p = NormParams::dense(TOKENS, D, 1e-6);
    (p.frame_rows, p.mod_row, p.shift_off, p.scale_off) = ((TOKENS / FRAMES) as u32, (6 * D) as u32, 0, D as u32);
    for schedule in Schedule::ALL.into_iter().filter(|&s| s != Schedule::Subgroup || gpu.caps.subgroups) {
        let k = Norm { stat: Stat::Layer, scale: Scale::Modulated, silu: false, schedule };
        common::time(
            c,
            "memory_bound",
            BenchmarkId::new(&k.to_string(), SHAPE),
            Throughput::Bytes((8 * n) as u64),
            &k,
            &p,
            &[&x, &modulation, &y],
        );
    }

    common::time(
        c,
        "memory_bound",
        BenchmarkId::new("copy_rows", SHAPE),
        Throughput::Bytes((8 * n) as u64),
        &Copy::F32,
        &CopyParams::rows(TOKENS, D, 0, 0),
        &[&x, &y],
    );
    common::time(
        c,
        "memory_bound",
        BenchmarkId::new("copy_transpose", SHAPE),
        Throughput::Bytes((8 * n) as u64),
        &Copy::F32,
        &CopyParams::to_channels_last(1, D, TOKENS),
        &[&x, &y],
    );
    common::time(
        c,
        "memory_bound",
        BenchmarkId::new("copy_fill", SHAPE),
        Throughput::Bytes((4 * n) as u64),
        &Fill,
        &FillParams { numel: n as u32, dst_off: 0, value: 0.0, _pad: 0 },
        &[&y],
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
