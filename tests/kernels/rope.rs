//! 3-axis RoPE against an f64 rotation: frame positions far past 1024, strided
//! views (a column block of a fused projection), in place, and dispatches folded
//! past 65535 workgroups.
use runtime::kernels::rope::{groups, inverse_table, reference, table, Params, Rope, RopeInPlace};
use runtime::DType;
use videossm_suite::{assert_close, gpu, Rng};

// Angles are rounded to f32 cos/sin once and the rotation is two f32 products and a
// sum: error ≲ 3·2⁻²⁴·|x| per component, so 1e-6 absolute + relative on N(0, 1) data.
const TOL: f64 = 1e-6;

/// Runs RoPE on `[tokens, heads·d]` rows placed at column `col` of rows `stride` wide.
fn check(frames: usize, rows: usize, cols: usize, heads: usize, d: usize, frame0: usize, col: usize, stride: usize, rng: &mut Rng) {
    let gpu = gpu();
    let mut p = Params::new(frames, rows, cols, heads, d);
    let tokens = p.tokens as usize;
    // Input is a column block of a wider tensor; output rows are padded differently.
    (p.x_off, p.x_row) = (col as u32, stride as u32);
    (p.y_off, p.y_row) = (3, (heads * d + 5) as u32);
    let x = rng.normals(col + tokens * stride, 1.0);
    let y_len = 3 + tokens * (heads * d + 5);
    let tab = table(frame0, frames, rows, cols, d);
    let tx = gpu.upload("x", &[x.len()], DType::F32, &x).unwrap();
    let tt = gpu.upload("table", &[tab.len()], DType::F32, &tab).unwrap();
    let ty = gpu.upload("y", &[y_len], DType::F32, &vec![-7.0; y_len]).unwrap();
    gpu.run(&Rope, &p, &[&tx, &tt, &ty]).unwrap();
    let mut want = vec![-7.0; y_len];
    reference(&p, frame0, &x, &mut want);
    let what = format!("rope {frames}x{rows}x{cols} heads={heads} d={d} frame0={frame0}");
    assert_close(&what, &gpu.download(&ty).unwrap(), &want, TOL, TOL);

    // In place on the input view itself.
    let mut q = p;
    (q.y_off, q.y_row) = (p.x_off, p.x_row);
    gpu.run(&RopeInPlace, &q, &[&tt, &tx]).unwrap();
    let mut want = x.clone();
    reference(&q, frame0, &x, &mut want);
    assert_close(&format!("{what} in place"), &gpu.download(&tx).unwrap(), &want, TOL, TOL);
}

#[test]
fn rope_matches_reference_at_any_position() {
    let mut rng = Rng::new(11);
    for &(frames, rows, cols, heads, d, frame0) in &[
        (3, 2, 3, 4, 16, 0),
        (3, 2, 2, 4, 16, 21),
        (1, 1, 1, 1, 8, 5000),
        (2, 3, 5, 2, 128, 1023),
        (3, 4, 4, 12, 128, 4997),
        (2, 1, 7, 3, 2, 999),
        (1, 3, 2, 1, 6, 4096),
    ] {
        check(frames, rows, cols, heads, d, frame0, 0, heads * d, &mut rng);
    }
}

#[test]
fn rope_on_a_column_block_of_a_fused_projection() {
    // q, k, v side by side: rotate the k block (columns [h·d, 2·h·d) of rows 3·h·d wide).
    let mut rng = Rng::new(12);
    check(2, 3, 4, 4, 32, 77, 4 * 32, 3 * 4 * 32, &mut rng);
    check(1, 2, 2, 2, 64, 3001, 2 * 64 + 1, 3 * 2 * 64 + 7, &mut rng);
}

#[test]
fn rope_folds_large_dispatches() {
    // 11·60·50 tokens × 2 heads × 64 pairs = 4.22 M invocations > 65535 workgroups of 64.
    let mut rng = Rng::new(13);
    check(11, 60, 50, 2, 128, 4990, 0, 256, &mut rng);
}

/// A session recovers the memory keys of evicted tokens from their cached keys with
/// the inverse table: rotating by it must give back the rows before RoPE.
#[test]
fn the_inverse_table_turns_rotated_rows_back() {
    let gpu = gpu();
    let mut rng = Rng::new(14);
    for &(frames, rows, cols, heads, d, frame0) in &[(3, 2, 3, 4, 16, 0), (3, 4, 4, 12, 128, 4997), (2, 3, 5, 2, 128, 1023)] {
        let p = Params::new(frames, rows, cols, heads, d);
        let x = rng.normals(p.tokens as usize * heads * d, 1.0);
        let y = gpu.empty("y", &[x.len()], DType::F32).unwrap();
        let back = gpu.empty("back", &[x.len()], DType::F32).unwrap();
        let up = |name: &str, v: &[f32]| gpu.upload(name, &[v.len()], DType::F32, v).unwrap();
        let (tx, forward, inverse) =
            (up("x", &x), up("table", &table(frame0, frames, rows, cols, d)), up("inverse", &inverse_table(frame0, frames, rows, cols, d)));
        gpu.run(&Rope, &p, &[&tx, &forward, &y]).unwrap();
        gpu.run(&Rope, &p, &[&y, &inverse, &back]).unwrap();
        // Two rotations, each within TOL of exact, by angles whose f32 cos² + sin² is 1 to 2⁻²³.
        assert_close(&format!("rope then its inverse, frame0={frame0} d={d}"), &gpu.download(&back).unwrap(), &x, 3.0 * TOL, 3.0 * TOL);
    }
}

#[test]
fn table_uses_the_spec_group_sizes() {
    // MODEL.md A.3: d = 128 splits into 22, 21, 21 pairs.
    assert_eq!(groups(128), (22, 21));
    assert_eq!(groups(2), (1, 0));
    let t = table(7, 2, 3, 4, 128);
    assert_eq!(t.len(), 2 * (2 * 22 + (3 + 4) * 21));
    // Entry (frame 8, pair 1) turns by 8·10000^(−1/22), computed in f64.
    let a = 8.0 * 10000f64.powf(-1.0 / 22.0);
    assert_eq!((t[2 * (22 + 1)], t[2 * (22 + 1) + 1]), (a.cos() as f32, a.sin() as f32));
}
