//! Matmul kernel lab: the naive baseline, the register-blocked (CPU-adapter) and
//! workgroup-tiled (GPU) variants, and the `gemm` crate on the host as the yardstick
//! of what these cores can do. Napkin math: 2·M·N·K flops per call.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use runtime::kernels::matmul::{Act, Matmul, Params, Residual, Tiling};
use runtime::DType;
use videossm_suite::{gpu, Rng};

fn shapes() -> Vec<(usize, usize, usize)> {
    // 1024³, and a DiT projection (4680×1536×1536 at full size) scaled to lavapipe.
    vec![(1024, 1024, 1024), (780, 1536, 1536)]
}

fn bench(c: &mut Criterion) {
    let gpu = gpu();
    let mut rng = Rng::new(1);
    let mut group = c.benchmark_group("matmul");
    group.sample_size(10);
    for (m, n, k) in shapes() {
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let x = rng.normals(m * k, 1.0);
        let w = rng.normals(n * k, 0.1);
        let tx = gpu.upload("x", &[m * k], DType::F32, &x).unwrap();
        let ty = gpu.empty("y", &[m * n], DType::F32).unwrap();
        for (dtype, tiling) in [
            (DType::F32, Tiling::Naive),
            (DType::F32, Tiling::Register(4, 4)),
            (DType::F32, Tiling::Register(16, 32)),
            (DType::F32, Tiling::Workgroup),
            (DType::BF16, Tiling::Register(16, 32)),
        ] {
            let tw = gpu.upload("w", &[n * k], dtype, &w).unwrap();
            let kernel = Matmul { tiling, ..Matmul::new(dtype, false, Act::None, Residual::None) };
            let mut b = gpu.program();
            b.push(&kernel, &Params::dense(m, n, k), &[&tx, &tw, &ty]).unwrap();
            let mut prog = b.build().unwrap();
            group.bench_function(BenchmarkId::new(kernel.to_string(), format!("{m}x{n}x{k}")), |bch| {
                bch.iter(|| {
                    prog.run(gpu).unwrap();
                    gpu.wait().unwrap();
                })
            });
        }
        let (a, bt) = (&x, &w);
        let mut out = vec![0f32; m * n];
        group.bench_function(BenchmarkId::new("gemm_crate_host", format!("{m}x{n}x{k}")), |bch| {
            bch.iter(|| unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    out.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    k as isize,
                    bt.as_ptr(),
                    k as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(0),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
