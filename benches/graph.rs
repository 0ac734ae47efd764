//! Graph executor overheads on the DiT pass graph of the bench's small config:
//! building + compiling it, replaying it (CPU-side record + submit only), and a
//! whole call with the GPU work, so the replay overhead can be read as a share.
use criterion::{criterion_group, criterion_main, Criterion};
use graph::models::dit::graph::build_pass;
use graph::models::dit::{load, BlockState, DitDims};
use graph::CompileOptions;
use runtime::DType;
use videossm::synthetic::{random_checkpoint, small_config};
use videossm_suite::gpu;

fn bench(c: &mut Criterion) {
    let gpu = gpu();
    let cfg = small_config();
    let w = load::load(gpu, &cfg, &random_checkpoint(&cfg, true, 1), DType::F32, true).unwrap();
    let dims = DitDims::new(&cfg, 3, 16, 16);
    let states: Vec<BlockState> = (0..cfg.num_layers).map(|n| BlockState::new(gpu, n, 9 * 64, &dims, true, DType::F32).unwrap()).collect();
    let mut pass = build_pass(gpu, &w, &states, &dims, CompileOptions::default()).unwrap();
    let r = pass.compiled.report();
    println!("DiT pass graph: {r}");
    let mut group = c.benchmark_group("graph");
    group.sample_size(10);
    group.bench_function("compile_dit_pass", |b| b.iter(|| build_pass(gpu, &w, &states, &dims, CompileOptions::default()).unwrap()));
    // CPU time of recording and submitting one call, the GPU idle at the start.
    group.bench_function("replay_record_submit", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                gpu.wait().unwrap();
                let t = std::time::Instant::now();
                pass.compiled.run(gpu).unwrap();
                total += t.elapsed();
            }
            gpu.wait().unwrap();
            total
        })
    });
    group.bench_function("replay_with_gpu_work", |b| {
        b.iter(|| {
            pass.compiled.run(gpu).unwrap();
            gpu.wait().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
