//! One kernel, one recorded program, timed by criterion as run + wait, with its
//! throughput (bytes for memory-bound kernels, flops as elements for the others).
use criterion::{BenchmarkId, Criterion, Throughput};
use runtime::{Kernel, Tensor};
use videossm_suite::gpu;

pub fn time<K: Kernel + Clone + Send + Sync + 'static>(
    c: &mut Criterion,
    group: &str,
    id: BenchmarkId,
    throughput: Throughput,
    k: &K,
    p: &K::Params,
    args: &[&Tensor],
) {
    let gpu = gpu();
    let mut b = gpu.program();
    b.push(k, p, args).unwrap();
    let mut prog = b.build().unwrap();
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.throughput(throughput);
    g.bench_function(id, |bch| {
        bch.iter(|| {
            prog.run(gpu).unwrap();
            gpu.wait().unwrap();
        })
    });
    g.finish();
}
