use runtime::kernels::elementwise::{reference, Elementwise, Op, Params};
use runtime::DType;
use videossm_suite::{assert_close, gpu, Rng};

#[test]
fn elementwise_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(1);
    for op in Op::ALL {
        for &(n, len_b) in &[(1usize, 1usize), (255, 255), (1000, 7), (70_000, 64)] {
            let a = rng.normals(n, 2.0);
            let b = rng.normals(len_b, 1.0);
            let ta = gpu.upload("a", &[n], DType::F32, &a).unwrap();
            let tb = gpu.upload("b", &[len_b], DType::F32, &b).unwrap();
            let ty = gpu.empty("y", &[n], DType::F32).unwrap();
            gpu.run(&Elementwise { op }, &Params::new(n, len_b, 0.5), &[&ta, &tb, &ty]).unwrap();
            let got = gpu.download(&ty).unwrap();
            // f32 transcendental functions on the GPU are accurate to a few ulp.
            assert_close(&format!("{op:?} n={n}"), &got, &reference(op, &a, &b, 0.5), 1e-6, 1e-5);
        }
    }
}

#[test]
fn large_dispatch_folds_into_2d() {
    // More than 65535 workgroups of 256: exercises the 2D grid.
    let gpu = gpu();
    let n = 65536 * 256 + 3;
    let a: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let ta = gpu.upload("a", &[n], DType::F32, &a).unwrap();
    let tb = gpu.upload("b", &[1], DType::F32, &[1.0]).unwrap();
    let ty = gpu.empty("y", &[n], DType::F32).unwrap();
    gpu.run(&Elementwise { op: Op::Add }, &Params::new(n, 1, 1.0), &[&ta, &tb, &ty]).unwrap();
    let got = gpu.download(&ty).unwrap();
    assert_close("add 2d", &got, &reference(Op::Add, &a, &[1.0], 1.0), 0.0, 0.0);
}
