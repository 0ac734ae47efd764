//! Matmul kernel lab: the naive baseline, the register-blocked (CPU-adapter) and
//! workgroup-tiled (GPU) variants, what `Matmul::for_device` picks here, and the `gemm`
//! crate on the host as the yardstick of what these cores can do.
//! Napkin math: 2·M·N·K flops per call; 1024³ is 2.1 GFLOP, so the naive kernel at
//! ~0.6 GFLOP/s needs seconds per call — sampling is flat with 10 samples to stay
//! bearable on lavapipe. Prints a GFLOP/s table (with the speed-up over naive) at the end.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use runtime::kernels::matmul::{Act, Matmul, Params, Residual, Tiling};
use runtime::DType;
use std::time::{Duration, Instant};
use videossm_suite::{gpu, Rng};

fn shapes() -> Vec<(usize, usize, usize)> {
    // 1024³, and a DiT projection (4680×1536×1536 at full size) scaled to lavapipe.
    vec![(1024, 1024, 1024), (780, 1536, 1536)]
}

fn bench(c: &mut Criterion) {
    let gpu = gpu();
    let mut rng = Rng::new(1);
    let mut group = c.benchmark_group("matmul");
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(500));
    // (shape, variant, GFLOP/s) for the summary.
    let mut table: Vec<(String, String, f64)> = Vec::new();
    let mut record = |shape: &str, name: String, flops: f64, per_call: Duration| {
        // Duration::MAX: filtered out on the command line, never run.
        if per_call == Duration::MAX {
            return;
        }
        table.push((shape.to_string(), name, flops / per_call.as_secs_f64() / 1e9));
    };
    for (m, n, k) in shapes() {
        let shape = format!("{m}x{n}x{k}");
        let flops = (2 * m * n * k) as f64;
        let p = Params::dense(m, n, k);
        let x = rng.normals(m * k, 1.0);
        let w = rng.normals(n * k, 0.1);
        let tx = gpu.upload("x", &[m * k], DType::F32, &x).unwrap();
        let ty = gpu.empty("y", &[m * n], DType::F32).unwrap();
        let tuned = |dtype| Matmul::for_device(&gpu.caps, dtype, false, Act::None, Residual::None, &p);
        let base = Matmul::new(DType::F32, false, Act::None, Residual::None);
        let mut kernels = vec![
            Matmul { tiling: Tiling::Naive, ..base },
            Matmul { tiling: Tiling::Register(8, 16), ..base },
            Matmul { tiling: Tiling::Workgroup, x_vec4: k % 4 == 0, ..base },
            tuned(DType::F32),
            tuned(DType::BF16),
        ];
        kernels.dedup_by_key(|k| k.to_string());
        for kernel in kernels {
            let tw = gpu.upload("w", &[n * k], kernel.w_dtype, &w).unwrap();
            let mut b = gpu.program();
            b.push(&kernel, &p, &[&tx, &tw, &ty]).unwrap();
            let mut prog = b.build().unwrap();
            let mut best = Duration::MAX;
            group.bench_function(BenchmarkId::new(kernel.to_string(), &shape), |bch| {
                bch.iter_custom(|iters| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        prog.run(gpu).unwrap();
                        gpu.wait().unwrap();
                    }
                    let total = t.elapsed();
                    best = best.min(total / iters as u32);
                    total
                })
            });
            record(&shape, kernel.to_string(), flops, best);
        }
        // The host yardstick on the same product (W read as [N, K]: same flops and traffic).
        let mut out = vec![0f32; m * n];
        let mut best = Duration::MAX;
        group.bench_function(BenchmarkId::new("gemm_crate_host", &shape), |bch| {
            bch.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    // SAFETY: every pointer/stride pair describes a live buffer of the stated shape.
                    unsafe {
                        gemm::gemm(
                            m,
                            n,
                            k,
                            out.as_mut_ptr(),
                            1,
                            n as isize,
                            false,
                            x.as_ptr(),
                            1,
                            k as isize,
                            w.as_ptr(),
                            k as isize,
                            1,
                            0.0,
                            1.0,
                            false,
                            false,
                            false,
                            gemm::Parallelism::Rayon(0),
                        )
                    }
                }
                let total = t.elapsed();
                best = best.min(total / iters as u32);
                total
            })
        });
        record(&shape, "gemm_crate_host".into(), flops, best);
    }
    group.finish();
    println!("\n{:<16} {:<44} {:>9} {:>9}", "shape", "variant", "GFLOP/s", "x naive");
    for (shape, name, gflops) in &table {
        let naive = table.iter().find(|(s, v, _)| s == shape && v.ends_with("_naive")).map_or(f64::NAN, |r| r.2);
        println!("{shape:<16} {name:<44} {gflops:>9.2} {:>9.1}", gflops / naive);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
