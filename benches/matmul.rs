//! Matmul kernel lab: the naive baseline, the register-blocked (CPU-adapter) and
//! workgroup-block (GPU: 128×128 with 8×8 per invocation, 64×64 with 4×4) variants, the
//! matrix units where the adapter has them, what `Matmul::for_device` picks here, and
//! the `gemm` crate on the host as the yardstick of what these cores can do.
//! Napkin math: 2·M·N·K flops per call; 1024³ is 2.1 GFLOP, so the naive kernel at
//! ~0.6 GFLOP/s needs seconds per call — sampling is flat with 10 samples to stay
//! bearable on lavapipe. Per FMA a GPU block loads 1/BM + 1/BN operand words from global
//! memory (1/64 for 128×128) and 1/TM + 1/TN from workgroup memory (1/4 for 8×8); the
//! 16×32 register tile loads 1/16 + 1/32 straight from global memory (caches). Prints a
//! GFLOP/s table at the end, with the speed-up over naive and the ratio to what
//! `for_device` picks for f32 here.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use runtime::kernels::matmul::{Act, Block, Coop, Matmul, Params, Residual, Tiling};
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
    // The f32 variant `for_device` picks, by shape.
    let mut tuned_f32 = std::collections::HashMap::new();
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
        tuned_f32.insert(shape.clone(), tuned(DType::F32).to_string());
        let base = Matmul::new(DType::F32, false, Act::None, Residual::None);
        let v4 = k % 4 == 0;
        let mut kernels = vec![
            Matmul { tiling: Tiling::Naive, ..base },
            Matmul { tiling: Tiling::Register(8, 16), ..base },
            Matmul { tiling: Tiling::Register(16, 32), ..base },
            Matmul { tiling: Tiling::Workgroup(Block::SMALL), x_vec4: v4, ..base },
            // The 128×128 block, as deep as this adapter's workgroup memory allows.
            Matmul {
                tiling: Tiling::Workgroup(Block::for_shape(gpu.caps.workgroup_storage, &Params::dense(4096, 4096, k))),
                x_vec4: v4,
                ..base
            },
            tuned(DType::F32),
            tuned(DType::BF16),
        ];
        kernels.extend(Coop::for_device(&gpu.caps).map(|c| Matmul { tiling: Tiling::Coop(c), x_vec4: v4, ..base }));
        let mut seen = std::collections::HashSet::new();
        kernels.retain(|k| seen.insert(k.to_string()));
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
    println!("\n{:<16} {:<44} {:>9} {:>9} {:>9}", "shape", "variant", "GFLOP/s", "x naive", "x tuned");
    for (shape, name, gflops) in &table {
        let of = |variant: &str| table.iter().find(|(s, v, _)| s == shape && v == variant).map_or(f64::NAN, |r| r.2);
        let naive = table.iter().find(|(s, v, _)| s == shape && v.ends_with("_naive")).map_or(f64::NAN, |r| r.2);
        let tuned = of(&tuned_f32[shape]);
        println!("{shape:<16} {name:<44} {gflops:>9.2} {:>9.1} {:>9.2}", gflops / naive, gflops / tuned);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
