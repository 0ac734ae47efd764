//! Attention against a dense masked f64 reference: sink + window ring ranges,
//! per-block lists, the T5 bias, head dims 8…384.
use runtime::kernels::attention::{bias_len, reference, Attention, Params};
use runtime::DType;
use videossm_suite::{assert_close, gpu, Rng};

fn check(p: &Params, tk_rows: usize, ranges: &[[u32; 2]], bias: bool, seed: u64) {
    let gpu = gpu();
    let mut rng = Rng::new(seed);
    let (h, d) = (p.heads as usize, p.d as usize);
    let q = rng.normals(p.tq as usize * h * d, 1.0);
    let k = rng.normals(tk_rows * h * d, 1.0);
    let v = rng.normals(tk_rows * h * d, 1.0);
    let b = rng.normals(h * bias_len(p.tq as usize, p.tk.max(1) as usize), 2.0);
    let flat: Vec<f32> = ranges.iter().flat_map(|r| [r[0] as f32, r[1] as f32]).collect();
    let t = |name: &str, data: &[f32]| gpu.upload(name, &[data.len()], DType::F32, data).unwrap();
    let (tq_, tk_, tv_, tb_) = (t("q", &q), t("k", &k), t("v", &v), t("bias", &b));
    let tr = gpu.upload("ranges", &[flat.len()], DType::U32, &flat).unwrap();
    let to = gpu.empty("o", &[q.len()], DType::F32).unwrap();
    let kernel = Attention::new(d, bias);
    let mut args = vec![&tq_, &tk_, &tv_, &tr];
    if bias {
        args.push(&tb_);
    }
    args.push(&to);
    gpu.run(&kernel, p, &args).unwrap();
    let mut want = vec![0.0; q.len()];
    reference(p, &q, &k, &v, ranges, bias.then_some(&b[..]), &mut want);
    // Softmax weights sum to one, so the output error is that of a d-term f32 dot
    // product in the scores (times exp's sensitivity) plus a convex combination.
    assert_close(&format!("{kernel} tq={} d={d}", p.tq), &gpu.download(&to).unwrap(), &want, 2e-5, 2e-5);
}

#[test]
fn sink_and_wrapped_window_ranges() {
    // A 36-slot cache: 12 sink slots, ring 12..36 holding a window that wraps.
    let ranges = [[0, 12], [30, 36], [12, 24]];
    for (i, &d) in [8usize, 16, 64, 128].iter().enumerate() {
        let p = Params::dense(37, 3, d, ranges.len(), 1.0 / (d as f32).sqrt());
        check(&p, 36, &ranges, false, i as u64);
    }
}

#[test]
fn wide_single_head_and_single_query() {
    check(&Params::dense(70, 1, 384, 1, 1.0 / (384f32).sqrt()), 70, &[[0, 70]], false, 20);
    check(&Params::dense(1, 2, 16, 1, 0.25), 5, &[[0, 5]], false, 21);
}

#[test]
fn per_block_lists_give_causal_attention() {
    // Query block b sees keys [0, 64·(b+1)): block-causal attention.
    let (tq, qb) = (200usize, 64usize);
    let ranges: Vec<[u32; 2]> = (0..tq.div_ceil(qb)).map(|b| [0, (qb * (b + 1)).min(tq) as u32]).collect();
    let mut p = Params::dense(tq, 2, 16, 1, 0.25);
    p.q_block = qb as u32;
    check(&p, tq, &ranges, false, 30);
}

#[test]
fn relative_bias_unscaled_with_padding_masked() {
    // T5: no scaling, a bias per (head, key − query), and only the first 9 of 12 keys valid.
    let mut p = Params::dense(12, 4, 8, 1, 1.0);
    p.tk = 12;
    check(&p, 12, &[[0, 9]], true, 40);
    // Two workgroups of queries, head dim 64 as in umT5-XXL, 50 of 70 keys valid
    // (scaled, so unit-normal q/k keep the f32 score error within the tolerance).
    let mut p = Params::dense(70, 2, 64, 1, 0.125);
    p.tk = 70;
    check(&p, 70, &[[0, 50]], true, 41);
    // Fewer queries than keys: the table spans tq + tk − 1 distances.
    let mut p = Params::dense(5, 3, 16, 1, 1.0);
    p.tk = 20;
    check(&p, 20, &[[0, 20]], true, 42);
}
