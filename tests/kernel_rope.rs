//! 3-axis RoPE against an f64 rotation, including frame positions far past 1024.
use runtime::kernels::rope::{reference, table, Params, Rope};
use runtime::DType;
use videossm_suite::{assert_close, gpu, Rng};

#[test]
fn rope_matches_reference_at_any_position() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    for &(frames, rows, cols, heads, d, frame0) in
        &[(3, 2, 3, 4, 16, 0), (3, 2, 2, 4, 16, 21), (1, 1, 1, 1, 8, 5000), (2, 3, 5, 2, 128, 1023), (3, 4, 4, 12, 128, 4997)]
    {
        let p = Params::new(frames, rows, cols, heads, d);
        let n = p.tokens as usize * heads * d;
        let x = rng.normals(n, 1.0);
        let tx = gpu.upload("x", &[n], DType::F32, &x).unwrap();
        let tab = table(frame0, frames, rows, cols, d);
        let tt = gpu.upload("table", &[tab.len()], DType::F32, &tab).unwrap();
        let ty = gpu.empty("y", &[n], DType::F32).unwrap();
        gpu.run(&Rope, &p, &[&tx, &tt, &ty]).unwrap();
        let mut want = vec![0.0; n];
        reference(&p, frame0, &x, &mut want);
        // Angles are rounded to f32 cos/sin once: error ≲ 1e-7·|x| per component.
        assert_close(&format!("rope frame0={frame0} d={d}"), &gpu.download(&ty).unwrap(), &want, 1e-6, 1e-6);
    }
}
