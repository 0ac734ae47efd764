//! The FMA-throughput probe of `bench --full` against its f64 recurrence.
use runtime::kernels::peak::{reference, Params, Peak};
use runtime::{DType, Kernel};
use videossm_suite::{assert_close, gpu};

fn check(f16: bool, invocations: u32, iters: u32, atol: f64) {
    let gpu = gpu();
    let out = gpu.empty("out", &[invocations as usize], DType::F32).unwrap();
    let p = Params::new(invocations, iters);
    gpu.run(&Peak { f16 }, &p, &[&out]).unwrap();
    let want: Vec<f32> = (0..invocations).map(|i| reference(i, iters) as f32).collect();
    assert_close(&format!("peak f16={f16} iters={iters}"), &gpu.download(&out).unwrap(), &want, atol, 0.0);
}

#[test]
fn fma_chains_match_the_recurrence() {
    // Three steps keep every chain short of its limit 1 and exact in binary fractions
    // (a multiple of 27/512 at most), so f32 is exact up to the final sums' rounding; f16
    // rounds the sum of eight chains near 8 to its 2⁻⁸ spacing, on each of four lanes.
    check(false, 1000, 3, 1e-5);
    // 2000 steps converge every chain to 1 (32 per invocation) and must not drift.
    check(false, 300, 2000, 1e-4);
    if gpu().caps.f16 {
        check(true, 1000, 3, 4.0 * 8.0 * 2f64.powi(-8));
        check(true, 300, 2000, 4.0 * 8.0 * 2f64.powi(-8));
    }
}

#[test]
fn flops_count_every_invocation_of_the_grid() {
    // 2 FLOP per FMA × 8 chains × 4 lanes × iters, for the whole workgroups dispatched.
    let p = Params::new(300, 10);
    assert_eq!(Peak { f16: false }.flops(&p, &[]), 2.0 * 32.0 * 10.0 * 512.0);
}
