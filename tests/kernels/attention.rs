//! Attention against a dense masked f64 reference: sink + window ring ranges,
//! per-block lists, empty ranges, the T5 bias, head dims 8…384, in every schedule:
//! per-query, and tiled with f32 or f16 K/V tiles and lane sums by subgroups or
//! through workgroup memory (the variants this adapter can run; GL has neither f16
//! nor subgroups).
use runtime::kernels::attention::{bias_len, reference, Attention, Params, Schedule};
use runtime::{Capabilities, DType, DeviceKind, Kernel};
use videossm_suite::{assert_close, gpu, Rng};

/// Unit roundoff of f16 (11 significant bits), for K/V staged as f16.
const F16_U: f64 = 1.0 / 2048.0;

/// The per-query variant and tiled ones forced with small tiles, so that the cases
/// below cross tile boundaries, end in ragged tiles and in partial steps: 4-key tiles
/// of one step, and 16-key tiles of two 8-key steps.
fn variants(d: usize, bias: bool) -> Vec<Attention> {
    let caps = &gpu().caps;
    let mut v = vec![Attention::new(d, bias)];
    for (keys, step) in [(4, 4), (16, 8)] {
        for kv_f16 in [false, true] {
            for subgroups in [false, true] {
                let k = Attention { schedule: Schedule::Tiled { keys, step }, kv_f16, subgroups, ..Attention::new(d, bias) };
                // One lane per query has nothing to sum: the subgroup form is the same kernel.
                if subgroups && k.lanes() == 1 {
                    continue;
                }
                if k.runs_on(caps) {
                    v.push(k);
                } else {
                    eprintln!("{k}: skipped, this adapter lacks its f16, subgroup size or workgroup memory");
                }
            }
        }
    }
    v
}

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
    let mut want = vec![0.0; q.len()];
    reference(p, &q, &k, &v, ranges, bias.then_some(&b[..]), &mut want);
    let f16_bound = f16_bounds(p, &q, &k, &v, ranges, bias.then_some(&b[..]));
    for kernel in variants(d, bias) {
        // Pre-filled so that a query left unwritten shows.
        let to = gpu.upload("o", &[q.len()], DType::F32, &vec![f32::NAN; q.len()]).unwrap();
        let mut args = vec![&tq_, &tk_, &tv_, &tr];
        if bias {
            args.push(&tb_);
        }
        args.push(&to);
        gpu.run(&kernel, p, &args).unwrap();
        let got = gpu.download(&to).unwrap();
        let what = format!("{kernel} tq={} d={d}", p.tq);
        // Softmax weights sum to one, so the f32 error is that of a d-term dot product in
        // the scores (times exp's sensitivity) plus a convex combination.
        if kernel.kv_f16 {
            assert_within(&what, &got, &want, &f16_bound);
        } else {
            assert_close(&what, &got, &want, 2e-5, 2e-5);
        }
    }
}

/// Per output element, the first-order bound on what rounding K and V to f16 (relative
/// error ≤ u = 2⁻¹¹) can change: a score s_j moves by at most u·a_j with
/// a_j = scale·Σ_c|q_c·k_jc|, and ∂o_c/∂s_j = p_j·(v_jc − o_c); a value moves by at most
/// u·|v_jc|. So |δo_c| ≤ u·Σ_j p_j·(a_j·|v_jc − o_c| + |v_jc|) (q and the bias stay f32).
/// On lavapipe the worst element of a case uses 5–64 % of it (f32 allowance included).
fn f16_bounds(p: &Params, q: &[f32], k: &[f32], v: &[f32], ranges: &[[u32; 2]], bias: Option<&[f32]>) -> Vec<f64> {
    let (d, heads, tq) = (p.d as usize, p.heads as usize, p.tq as usize);
    let mut out = vec![0.0; q.len()];
    for qi in 0..tq {
        let list = &ranges[(qi / p.q_block as usize) * p.n_ranges as usize..][..p.n_ranges as usize];
        let keys: Vec<usize> = list.iter().flat_map(|r| r[0] as usize..r[1] as usize).collect();
        for h in 0..heads {
            let row = |t: &[f32], j: usize| -> Vec<f64> { t[(j * heads + h) * d..][..d].iter().map(|&x| x as f64).collect() };
            let qv = row(q, qi);
            let scale = p.scale as f64;
            let dot = |kv: &[f64], abs: bool| -> f64 {
                qv.iter().zip(kv).map(|(a, b)| if abs { (a * b).abs() } else { a * b }).sum::<f64>() * scale
            };
            let table = |j: usize| bias.map_or(0.0, |b| b[h * bias_len(tq, p.tk as usize) + j + tq - 1 - qi] as f64);
            let (s, a): (Vec<f64>, Vec<f64>) = keys.iter().map(|&j| (dot(&row(k, j), false) + table(j), dot(&row(k, j), true))).unzip();
            let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|x| (x - max).exp()).sum();
            for c in 0..d {
                let vc: Vec<f64> = keys.iter().map(|&j| v[(j * heads + h) * d + c] as f64).collect();
                let pj = |i: usize| (s[i] - max).exp() / z;
                let o: f64 = (0..keys.len()).map(|i| pj(i) * vc[i]).sum();
                let bound: f64 = (0..keys.len()).map(|i| pj(i) * (a[i] * (vc[i] - o).abs() + vc[i].abs())).sum();
                out[(qi * heads + h) * d + c] = F16_U * bound;
            }
        }
    }
    out
}

/// |got − want| ≤ 2e-5·(1 + |want|) + bound, per element, naming the worst one.
#[track_caller]
fn assert_within(what: &str, got: &[f32], want: &[f32], bound: &[f64]) {
    let excess = |i: usize| (got[i] as f64 - want[i] as f64).abs() / (2e-5 * (1.0 + (want[i] as f64).abs()) + bound[i]);
    let worst = (0..got.len()).max_by(|&a, &b| excess(a).total_cmp(&excess(b)).then(b.cmp(&a))).unwrap_or(0);
    let ok = got.iter().all(|g| g.is_finite()) && (got.is_empty() || excess(worst) <= 1.0);
    assert!(ok, "{what}: element {worst} is {} but the reference says {} (f16 bound {:e})", got[worst], want[worst], bound[worst]);
}

#[test]
fn sink_and_wrapped_window_ranges() {
    // A 36-slot cache: 12 sink slots, ring 12..36 holding a window that wraps.
    let ranges = [[0, 12], [30, 36], [12, 24]];
    for (i, &d) in [8usize, 16, 32, 64, 128].iter().enumerate() {
        let p = Params::dense(37, 3, d, ranges.len(), 1.0 / (d as f32).sqrt());
        check(&p, 36, &ranges, false, i as u64);
    }
}

#[test]
fn wide_single_head_and_single_query() {
    check(&Params::dense(70, 1, 384, 1, 1.0 / (384f32).sqrt()), 70, &[[0, 70]], false, 20);
    check(&Params::dense(1, 2, 16, 1, 0.25), 5, &[[0, 5]], false, 21);
    check(&Params::dense(1, 2, 128, 1, 1.0 / (128f32).sqrt()), 33, &[[0, 33]], false, 22);
}

#[test]
fn more_queries_than_keys_and_whole_tiles() {
    // 150 queries over 9 keys: several query tiles, one ragged key tile.
    check(&Params::dense(150, 2, 64, 1, 0.125), 9, &[[0, 9]], false, 23);
    // 64 keys: whole 4- and 16-key tiles, no ragged tail.
    check(&Params::dense(20, 2, 32, 1, 1.0 / (32f32).sqrt()), 64, &[[0, 64]], false, 24);
}

#[test]
fn per_block_lists_give_causal_attention() {
    // Query block b sees keys [0, 64·(b+1)): block-causal attention.
    let (tq, qb) = (200usize, 64usize);
    let ranges: Vec<[u32; 2]> = (0..tq.div_ceil(qb)).map(|b| [0, (qb * (b + 1)).min(tq) as u32]).collect();
    for (i, d) in [16usize, 128].into_iter().enumerate() {
        let mut p = Params::dense(tq, 2, d, 1, 1.0 / (d as f32).sqrt());
        p.q_block = qb as u32;
        check(&p, tq, &ranges, false, 30 + i as u64);
    }
}

#[test]
fn empty_ranges_are_skipped_and_a_query_without_keys_outputs_zeros() {
    // Block 0 has only empty ranges (zeros out); block 1 has empty ranges around two real ones.
    let ranges = [[0, 0], [7, 7], [3, 3], [2, 2], [0, 17], [20, 23]];
    let mut p = Params::dense(100, 2, 64, 3, 0.125);
    p.q_block = 64;
    check(&p, 23, &ranges, false, 35);
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

#[test]
fn f16_tiles_saturate_instead_of_overflowing() {
    let gpu = gpu();
    let kernel = Attention { schedule: Schedule::Tiled { keys: 4, step: 4 }, kv_f16: true, ..Attention::new(8, false) };
    if !kernel.runs_on(&gpu.caps) {
        eprintln!("{kernel}: skipped, this adapter has no f16");
        return;
    }
    // One key, so its weight is 1 whatever its score: the output is its value row, which
    // f16 holds up to ±65504. Unclamped, 1e6 would become inf (and 0·inf a NaN score).
    let v = [1e6, -1e6, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let t = |name: &str, data: &[f32], dtype| gpu.upload(name, &[data.len()], dtype, data).unwrap();
    let (q, k, v) = (t("q", &[0.0; 8], DType::F32), t("k", &[1e6; 8], DType::F32), t("v", &v, DType::F32));
    let (r, o) = (t("ranges", &[0.0, 1.0], DType::U32), t("o", &[0.0; 8], DType::F32));
    gpu.run(&kernel, &Params::dense(1, 1, 8, 1, 1.0), &[&q, &k, &v, &r, &o]).unwrap();
    assert_eq!(gpu.download(&o).unwrap(), [65504.0, -65504.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn for_device_picks_per_query_on_cpus_and_tiles_from_the_budget_on_gpus() {
    let (f32, bf16) = (DType::F32, DType::BF16);
    let cpu = Capabilities::baseline(DeviceKind::Cpu);
    assert_eq!(Attention::for_device(&cpu, 128, false, bf16), Attention::new(128, false));
    // WebGPU's baseline: 16 KiB, f32 tiles, lane sums in workgroup memory (8 KiB of partials).
    let web = Capabilities::baseline(DeviceKind::Gpu);
    let k = Attention::for_device(&web, 128, false, bf16);
    assert_eq!((k.schedule, k.kv_f16, k.subgroups), (Schedule::Tiled { keys: 8, step: 8 }, false, false));
    assert_eq!((k.lanes(), k.queries(), k.workgroup_bytes()), (4, 64, 16384));
    // f16 doubles the keys a tile holds, for 16-bit weights only; subgroups free the partials.
    let full = Capabilities { f16: true, subgroups: true, subgroup_min: 32, subgroup_max: 32, ..web };
    let k = Attention::for_device(&full, 128, true, bf16);
    assert_eq!((k.schedule, k.kv_f16, k.subgroups, k.bias), (Schedule::Tiled { keys: 32, step: 8 }, true, true, true));
    let exact = Attention::for_device(&full, 128, true, f32);
    assert_eq!((exact.schedule, exact.kv_f16), (Schedule::Tiled { keys: 16, step: 8 }, false));
    // Subgroups smaller than a query's lanes (16 at head dim 384) are not used.
    let lavapipe = Capabilities { subgroup_min: 8, subgroup_max: 8, workgroup_storage: 32768, ..full };
    assert_eq!(Attention::for_device(&lavapipe, 128, false, bf16).schedule, Schedule::Tiled { keys: 64, step: 8 });
    let wide = Attention::for_device(&lavapipe, 384, false, f32);
    assert!(!wide.subgroups && wide.lanes() == 16 && wide.queries() == 16);
    // One lane per query at small head dims: nothing to sum, subgroups or not.
    let small = Attention::for_device(&full, 8, false, bf16);
    assert_eq!((small.schedule, small.subgroups, small.queries()), (Schedule::Tiled { keys: 64, step: 8 }, false, 64));
    // Every pick fits its budget; without room for 4 keys of 384 channels, per-query.
    for caps in [web, full, lavapipe] {
        for d in runtime::kernels::attention::HEAD_DIMS {
            for precision in [f32, bf16] {
                let k = Attention::for_device(&caps, d as usize, false, precision);
                assert!(matches!(k.schedule, Schedule::Tiled { .. }) && k.runs_on(&caps), "{k} on {caps:?}");
            }
        }
    }
    let tiny = Capabilities { workgroup_storage: 8192, ..web };
    assert_eq!(Attention::for_device(&tiny, 384, false, f32).schedule, Schedule::PerQuery);
    assert_eq!(k.workgroups(&Params::dense(130, 12, 128, 1, 1.0)), [3, 12, 1]);
    assert_eq!(wide.workgroups(&Params::dense(130, 1, 384, 1, 1.0)), [9, 1, 1]);
}

#[test]
fn check_bounds_q_o_bias_and_range_lists() {
    let k = Attention::new(16, true);
    let mut p = Params::dense(10, 2, 16, 3, 1.0);
    p.tk = 6;
    let ok = [(DType::F32, 320), (DType::F32, 192), (DType::F32, 192), (DType::U32, 6), (DType::F32, 2 * 15), (DType::F32, 320)];
    k.check(&p, &ok).unwrap();
    for (i, what) in [(0, "q"), (3, "ranges"), (4, "bias"), (5, "o")] {
        let mut bad = ok;
        bad[i].1 -= 1;
        assert!(k.check(&p, &bad).is_err(), "{what} one element short");
    }
    let mut bad = ok;
    bad[3].0 = DType::F32;
    assert!(k.check(&p, &bad).is_err(), "ranges must be u32");
    assert!(k.check(&p, &ok[1..]).is_err(), "operand count");
    assert!(k.check(&Params { d: 32, ..p }, &ok).is_err(), "head dim");
    assert!(k.check(&Params { q_block: 8, ..p }, &ok).is_err(), "q_block below tq and not a multiple of 64");
}
