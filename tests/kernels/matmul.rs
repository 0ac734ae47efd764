//! Matmul against its f64 CPU reference over shapes on and off the tile, every
//! epilogue, every weight dtype, strided views and batches, in every tiling this adapter
//! runs (the cooperative-matrix one only where offered).
use runtime::kernels::matmul::{column_blocks, reference, tilings, Act, Block, Coop, Matmul, Params, RefArgs, Residual, Tiling};
use runtime::Gpu;
use runtime::Kernel;
use runtime::{Capabilities, CoopMatrix, DType, DeviceKind, Tensor};
use videossm_suite::{gpu, gpu_unchecked, Rng};

/// The device a tiling is tested on (see [`gpu_unchecked`]).
fn device(tiling: Tiling) -> &'static Gpu {
    if tiling == Tiling::Register(16, 32) {
        gpu_unchecked()
    } else {
        gpu()
    }
}

/// Every tiling (and vec4 X choice) this adapter can run: all but the cooperative ones
/// unless the device was opened with a configuration of their fragment size and its
/// subgroups are no larger than theirs.
fn tilings_here() -> Vec<(Tiling, bool)> {
    let caps = gpu().caps;
    let runs = |t: Tiling| match t {
        Tiling::Coop(c) => Coop::for_device(&caps).is_some_and(|d| d.size == c.size && d.subgroup_max <= c.subgroup_max),
        _ => true,
    };
    tilings().into_iter().filter(|&(t, _)| runs(t)).collect()
}

/// The staged GPU tilings of this adapter, as `(tiling, x_vec4)` with vec4 X.
fn staged_here() -> Vec<(Tiling, bool)> {
    tilings_here().into_iter().filter(|&(t, v4)| v4 && matches!(t, Tiling::Workgroup(_) | Tiling::Coop(_))).collect()
}

/// Runs one call on the GPU and on the CPU (see [`check_result`] for the tolerance).
fn check(k: &Matmul, p: &Params, x_len: usize, w_len: usize, y_len: usize, seed: u64) {
    check_variants(k, p, x_len, w_len, y_len, seed, &tilings_here());
}

fn check_variants(k: &Matmul, p: &Params, x_len: usize, w_len: usize, y_len: usize, seed: u64, variants: &[(Tiling, bool)]) {
    let mut rng = Rng::new(seed);
    let x = rng.normals(x_len, 1.0);
    let w: Vec<f32> = rng.normals(w_len, 0.3).into_iter().map(|v| k.w_dtype.round(v)).collect();
    let bias = rng.normals(p.n as usize, 0.5);
    let res = rng.normals(y_len.max(p.r_off as usize + p.m as usize * p.r_row as usize), 1.0);
    let gate_len = p.g_off as usize + (p.m as usize).div_ceil(p.rows_per_gate as usize) * p.g_row as usize;
    let gate = rng.normals(gate_len.max(1), 1.0);
    let y0 = rng.normals(y_len, 1.0);
    for &(tiling, x_vec4) in variants {
        let aligned = [p.x_off, p.x_row, p.x_batch, p.k].iter().all(|v| v % 4 == 0);
        if x_vec4 && !aligned {
            continue;
        }
        let gpu = device(tiling);
        let tx = gpu.upload("x", &[x_len], DType::F32, &x).unwrap();
        let tw = gpu.upload("w", &[w_len], k.w_dtype, &w).unwrap();
        let ty = gpu.upload("y", &[y_len], DType::F32, &y0).unwrap();
        let tb = gpu.upload("bias", &[bias.len()], DType::F32, &bias).unwrap();
        let tr = gpu.upload("res", &[res.len()], DType::F32, &res).unwrap();
        let tg = gpu.upload("gate", &[gate.len()], DType::F32, &gate).unwrap();
        let mut args = vec![&tx, &tw];
        if k.bias {
            args.push(&tb);
        }
        if k.residual != Residual::None {
            args.push(&tr);
        }
        if k.residual == Residual::Gated {
            args.push(&tg);
        }
        args.push(&ty);
        let variant = Matmul { tiling, x_vec4, ..*k };
        variant.check(p, &operands(&args)).unwrap();
        gpu.run(&variant, p, &args).unwrap();
        check_result(&variant, p, &gpu.download(&ty).unwrap(), &x, &w, &bias, &res, &gate, &y0);
    }
}

fn operands(args: &[&Tensor]) -> Vec<(DType, usize)> {
    args.iter().map(|t| (t.dtype, t.numel())).collect()
}

#[allow(clippy::too_many_arguments)]
fn check_result(k: &Matmul, p: &Params, got: &[f32], x: &[f32], w: &[f32], bias: &[f32], res: &[f32], gate: &[f32], y0: &[f32]) {
    let mut want = y0.to_vec();
    let a = RefArgs {
        x,
        w,
        bias: k.bias.then_some(bias),
        res: (k.residual != Residual::None).then_some(res),
        gate: (k.residual == Residual::Gated).then_some(gate),
    };
    reference(k, p, &a, &mut want);
    let label = format!("{k} m={} n={} k={} batch={}", p.m, p.n, p.k, p.batch);
    assert_within(&label, got, &want, &tolerance(k, p, x, w, gate, &want));
}

/// |got − want| allowed per element. With f32 operands, the accumulation error: a random
/// walk over K products, 2e-6·√K absolute and relative. The matrix units round X and W to
/// f16 (unit roundoff u = 2⁻¹¹; f16 weights are exact, bf16 ones too within f16's range),
/// so each product is off by up to (1+u)² − 1 ≈ 2u of |x·w| and the sum by
/// 2u·Σ_k |x_k·w_k|, which the activation's slope (at most 1.13 for GELU-tanh and 1.1
/// for SiLU) and the gate (at most max|g|) scale before the residual is added.
fn tolerance(k: &Matmul, p: &Params, x: &[f32], w: &[f32], gate: &[f32], want: &[f32]) -> Vec<f64> {
    let acc = 2e-6 * (p.k as f64).sqrt();
    let mut allowed: Vec<f64> = want.iter().map(|&v| acc * (1.0 + (v as f64).abs())).collect();
    if let Tiling::Coop(_) = k.tiling {
        let u = 2f64.powi(-11);
        let slope = if k.act == Act::None { 1.0 } else { 1.13 };
        let g = if k.residual == Residual::Gated { gate.iter().fold(0f64, |m, &v| m.max(v.abs() as f64)) } else { 1.0 };
        // Σ|x·w| per output: the reference on |X| and |W| with no epilogue.
        let plain = Matmul { bias: false, act: Act::None, residual: Residual::None, ..*k };
        let (ax, aw): (Vec<f32>, Vec<f32>) = (x.iter().map(|v| v.abs()).collect(), w.iter().map(|v| v.abs()).collect());
        let mut mag = vec![0.0; want.len()];
        reference(&plain, p, &RefArgs { x: &ax, w: &aw, bias: None, res: None, gate: None }, &mut mag);
        for (a, m) in allowed.iter_mut().zip(mag) {
            *a += 2.0 * u * (1.0 + u) * slope * g * m as f64;
        }
    }
    allowed
}

/// Asserts |got − want| ≤ allowed everywhere, naming the worst element.
#[track_caller]
fn assert_within(what: &str, got: &[f32], want: &[f32], allowed: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs reference {}", got.len(), want.len());
    let excess = |i: usize| if got[i].is_finite() { (got[i] as f64 - want[i] as f64).abs() / allowed[i] } else { f64::INFINITY };
    let worst = (0..got.len()).max_by(|&a, &b| excess(a).total_cmp(&excess(b)));
    if let Some(i) = worst.filter(|&i| excess(i) > 1.0) {
        panic!(
            "{what}: element {i} is {} but the reference says {} (|err| = {:e}, allowed {:e})",
            got[i],
            want[i],
            (got[i] as f64 - want[i] as f64).abs(),
            allowed[i]
        );
    }
}

/// K up to the DiT's FFN width (8960) also guards against llvmpipe's loop budget
/// (65535 iterations per invocation over all loops), which cut rolled tiles at K ≈ 1900.
#[test]
fn dense_shapes_on_and_off_the_tile() {
    let k = Matmul::new(DType::F32, false, Act::None, Residual::None);
    for (i, &(m, n, kk)) in [
        (1, 1, 1),
        (1, 64, 64),
        (32, 32, 32),
        (33, 31, 17),
        (5, 130, 7),
        (64, 48, 1100),
        (97, 3, 256),
        (1, 300, 2000),
        (2, 1, 1500),
        (130, 257, 9),
    ]
    .iter()
    .enumerate()
    {
        check(&k, &Params::dense(m, n, kk), m * kk, n * kk, m * n, i as u64);
    }
}

/// Gate rows per frame of 6 tokens, read from slot 2 of a `[F, 6, N]` modulation.
fn gated_params(m: usize, n: usize, kk: usize) -> Params {
    let mut p = Params::dense(m, n, kk);
    (p.rows_per_gate, p.g_row, p.g_off) = (6, 6 * n as u32, 2 * n as u32);
    p
}

#[test]
fn every_epilogue_and_weight_dtype() {
    // The epilogue and the weight load are the same code in every tiling, so the full
    // product of epilogues and dtypes runs on the tilings that compile in a few seconds
    // at most, one per combination in rotation; the larger register tiles get theirs
    // below, and the matrix units every combination (where they run, see
    // coop_matrix_tiling_where_offered).
    let cheap: Vec<(Tiling, bool)> = tilings_here()
        .into_iter()
        .filter(|&(t, _)| !matches!(t, Tiling::Register(8, 16) | Tiling::Register(16, 32) | Tiling::Coop(_)))
        .collect();
    let (m, n, kk) = (37, 45, 72);
    let mut seed = 100;
    for w in [DType::F32, DType::F16, DType::BF16] {
        for bias in [false, true] {
            for act in [Act::None, Act::Gelu, Act::Silu] {
                for res in [Residual::None, Residual::Add, Residual::Gated] {
                    seed += 1;
                    let pick = [cheap[seed as usize % cheap.len()]];
                    check_variants(&Matmul::new(w, bias, act, res), &gated_params(m, n, kk), m * kk, n * kk, m * n, seed, &pick);
                }
            }
        }
    }
}

#[test]
fn every_tiling_with_every_weight_dtype() {
    let (m, n, kk) = (37, 45, 72);
    for (i, w) in [DType::F32, DType::F16, DType::BF16].into_iter().enumerate() {
        let k = Matmul::new(w, true, Act::Gelu, Residual::Gated);
        check_variants(&k, &gated_params(m, n, kk), m * kk, n * kk, m * n, 200 + i as u64, &tilings_here());
    }
}

/// The matrix-unit tiling on every epilogue, weight dtype and edge, where the adapter
/// offers it: GPUs with cooperative matrices, not lavapipe, which skips saying why.
#[test]
fn coop_matrix_tiling_where_offered() {
    let gpu = gpu();
    let Some(coop) = Coop::for_device(&gpu.caps) else {
        println!(
            "skipped: {gpu} offers no cooperative-matrix configuration the matmul uses \
             (square 8 or 16, f16 × f16 → f32, with shader-f16 and subgroups): coop_matrix = {:?}",
            gpu.caps.coop_matrix
        );
        return;
    };
    let both = [(Tiling::Coop(coop), false), (Tiling::Coop(coop), true)];
    let mut seed = 300;
    for w in [DType::F32, DType::F16, DType::BF16] {
        for bias in [false, true] {
            for act in [Act::None, Act::Gelu, Act::Silu] {
                for res in [Residual::None, Residual::Add, Residual::Gated] {
                    seed += 1;
                    let (m, n, kk) = (70, 90, 72);
                    check_variants(&Matmul::new(w, bias, act, res), &gated_params(m, n, kk), m * kk, n * kk, m * n, seed, &both);
                }
            }
        }
    }
    // On the block, one row and one column past it, K past BK by one, many blocks.
    for (m, n, kk) in [(64, 64, 32), (65, 63, 33), (1, 1, 1), (1, 300, 2000), (130, 257, 100), (200, 64, 1100)] {
        seed += 1;
        check_variants(
            &Matmul::new(DType::BF16, true, Act::None, Residual::Add),
            &Params::dense(m, n, kk),
            m * kk,
            n * kk,
            m * n,
            seed,
            &both,
        );
    }
}

#[test]
fn strided_views_batches_and_column_blocks() {
    // X is a column slice of a wider buffer, Y is written into columns 10.. of a wider
    // output, and a batch of 3 per-head problems uses per-batch weights, each a
    // column block of a wider weight (how a weight split across bindings is run).
    let (m, n, kk, batch) = (19, 23, 40, 3);
    let k = Matmul::new(DType::BF16, true, Act::None, Residual::Add);
    let p = Params {
        m: m as u32,
        n: n as u32,
        k: kk as u32,
        batch: batch as u32,
        x_off: 5,
        x_row: 3 * kk as u32,
        x_batch: kk as u32,
        // W is a column block of a wider [K, N + 3] weight.
        w_off: 2,
        w_row: (n + 3) as u32,
        w_batch: (kk * (n + 3)) as u32,
        y_off: 10,
        y_row: (batch * n + 10) as u32,
        y_batch: n as u32,
        r_off: 1,
        r_row: (n + 1) as u32,
        rows_per_gate: 1,
        ..Default::default()
    };
    check(&k, &p, 5 + m * 3 * kk, 2 + batch * kk * (n + 3), 10 + m * (batch * n + 10), 7);
}

#[test]
fn batches_with_shared_and_per_batch_weights() {
    // Shared weight (w_batch = 0): 4 independent X blocks through one projection.
    let (m, n, kk, batch) = (9, 33, 50, 4);
    let p = Params { batch, x_batch: (m * kk) as u32, y_batch: (m * n) as u32, ..Params::dense(m, n, kk) };
    check(&Matmul::new(DType::F16, true, Act::Silu, Residual::None), &p, batch as usize * m * kk, n * kk, batch as usize * m * n, 11);
    // Per-head memory reads S_h · q̂_h: 6 heads, one query row each, a 16×16 state per head.
    let (heads, d) = (6, 16);
    let p = Params { batch: heads as u32, x_batch: d as u32, w_batch: (d * d) as u32, y_batch: d as u32, ..Params::dense(1, d, d) };
    check(&Matmul::new(DType::F32, false, Act::None, Residual::None), &p, heads * d, heads * d * d, heads * d, 12);
}

#[test]
fn split_weight_runs_as_column_blocks_of_one_output() {
    // A [K, N] weight cut into column blocks, each its own tensor as when the whole would
    // not fit one binding, run as one program of one dispatch per block: Y must equal
    // the unsplit product, bias and gate included.
    let gpu = gpu();
    let (m, n, kk, dtype) = (13, 600, 64, DType::BF16);
    let max_binding = (256 * kk * dtype.size()) as u64;
    let blocks = column_blocks(n, kk, 1, dtype, max_binding).unwrap();
    assert_eq!(blocks, vec![0..256, 256..512, 512..600]);
    let mut rng = Rng::new(21);
    let x = rng.normals(m * kk, 1.0);
    let w: Vec<f32> = rng.normals(kk * n, 0.3).into_iter().map(|v| dtype.round(v)).collect();
    let bias = rng.normals(n, 0.5);
    let res = rng.normals(m * n, 1.0);
    let frames = m.div_ceil(5);
    let gate = rng.normals(frames * 6 * n, 1.0);
    let mut p = Params::dense(m, n, kk);
    (p.rows_per_gate, p.g_row, p.g_off) = (5, 6 * n as u32, 4 * n as u32);
    let up = |name: &str, v: &[f32], dt: DType| gpu.upload(name, &[v.len()], dt, v).unwrap();
    let (tx, tb, tr, tg) =
        (up("x", &x, DType::F32), up("bias", &bias, DType::F32), up("res", &res, DType::F32), up("gate", &gate, DType::F32));
    let ty = gpu.empty("y", &[m * n], DType::F32).unwrap();
    let wblocks: Vec<Tensor> = blocks
        .iter()
        .map(|c| up("w block", &(0..kk).flat_map(|r| w[r * n + c.start..r * n + c.end].to_vec()).collect::<Vec<f32>>(), dtype))
        .collect();
    let base = Matmul::new(dtype, true, Act::None, Residual::Gated);
    let mut picks = vec![(Tiling::Naive, false), (Tiling::Register(8, 16), false), (Tiling::Workgroup(Block::LARGE), false)];
    picks.extend(staged_here());
    for (tiling, x_vec4) in picks {
        let k = Matmul { tiling, x_vec4, ..base };
        let mut b = gpu.program();
        for (c, tw) in blocks.iter().zip(&wblocks) {
            let args = [&tx, tw, &tb, &tr, &tg, &ty];
            let pb = p.column_block(c.clone());
            k.check(&pb, &operands(&args)).unwrap();
            b.push(&k, &pb, &args).unwrap();
        }
        gpu.write(&ty, &vec![f32::NAN; m * n]).unwrap();
        b.build().unwrap().run(gpu).unwrap();
        let got = gpu.download(&ty).unwrap();
        let mut want = vec![0.0; m * n];
        reference(&k, &p, &RefArgs { x: &x, w: &w, bias: Some(&bias), res: Some(&res), gate: Some(&gate) }, &mut want);
        assert_within(&format!("{k} in {} column blocks", blocks.len()), &got, &want, &tolerance(&k, &p, &x, &w, &gate, &want));
    }
}

#[test]
fn row_blocks_of_one_product_equal_the_whole() {
    // Rows 0..6 and 6..13 of a gated product with 4 rows a gate frame, one dispatch
    // each into one Y: the second block starts inside frame 1, so its gate rows must
    // follow the whole product's numbering (gate_row0), not restart at 0.
    let gpu = gpu();
    let (m, n, kk) = (13, 40, 24);
    let mut rng = Rng::new(22);
    let x = rng.normals(m * kk, 1.0);
    let w = rng.normals(kk * n, 0.3);
    let bias = rng.normals(n, 0.5);
    let res = rng.normals(m * n, 1.0);
    let gate = rng.normals(m.div_ceil(4) * 2 * n, 1.0);
    let mut p = Params::dense(m, n, kk);
    (p.rows_per_gate, p.g_row, p.g_off) = (4, 2 * n as u32, n as u32);
    let up = |name: &str, v: &[f32]| gpu.upload(name, &[v.len()], DType::F32, v).unwrap();
    let (tx, tw, tb, tr, tg) = (up("x", &x), up("w", &w), up("bias", &bias), up("res", &res), up("gate", &gate));
    let ty = gpu.empty("y", &[m * n], DType::F32).unwrap();
    let base = Matmul::new(DType::F32, true, Act::Gelu, Residual::Gated);
    let mut picks = vec![(base.tiling, false), (Tiling::Workgroup(Block::LARGE), false)];
    picks.extend(staged_here());
    for (tiling, x_vec4) in picks {
        let k = Matmul { tiling, x_vec4, ..base };
        let mut b = gpu.program();
        for (start, rows) in [(0, 6), (6, 7)] {
            let args = [&tx, &tw, &tb, &tr, &tg, &ty];
            let pb = p.row_block(rows, start, start);
            k.check(&pb, &operands(&args)).unwrap();
            b.push(&k, &pb, &args).unwrap();
        }
        gpu.write(&ty, &vec![f32::NAN; m * n]).unwrap();
        b.build().unwrap().run(gpu).unwrap();
        let mut want = vec![0.0; m * n];
        reference(&k, &p, &RefArgs { x: &x, w: &w, bias: Some(&bias), res: Some(&res), gate: Some(&gate) }, &mut want);
        let got = gpu.download(&ty).unwrap();
        assert_within(&format!("{k} in 2 row blocks"), &got, &want, &tolerance(&k, &p, &x, &w, &gate, &want));
    }
}

#[test]
fn column_blocks_fit_the_binding_or_say_why_not() {
    assert_eq!(column_blocks(1000, 64, 1, DType::F32, 1 << 20).unwrap(), vec![0..1000]);
    // 3 per-batch copies of a [100, 1000] f16 weight in 200 000-byte bindings: 600 B a column.
    assert_eq!(column_blocks(1000, 100, 3, DType::F16, 200_000).unwrap(), vec![0..256, 256..512, 512..768, 768..1000]);
    assert!(column_blocks(1000, 1 << 20, 1, DType::F32, 1 << 27).is_err());
}

#[test]
fn check_rejects_params_that_leave_a_tensor() {
    let (m, n, kk) = (10, 20, 30);
    let p = Params { g_row: n as u32, ..Params::dense(m, n, kk) };
    let k = Matmul::new(DType::BF16, true, Act::Gelu, Residual::Gated);
    let ok = [(DType::F32, m * kk), (DType::BF16, kk * n), (DType::F32, n), (DType::F32, m * n), (DType::F32, m * n), (DType::F32, m * n)];
    k.check(&p, &ok).unwrap();
    let mut bad = ok;
    for (i, len) in [(0, m * kk - 1), (1, kk * n - 1), (2, n - 1), (3, m * n - 1), (4, m * n - 1), (5, m * n - 1)] {
        bad[i].1 = len;
        assert!(k.check(&p, &bad).is_err(), "operand {i} one element short");
        bad[i].1 = ok[i].1;
    }
    bad[1].0 = DType::F16;
    assert!(k.check(&p, &bad).is_err(), "weight dtype");
    assert!(k.check(&p, &ok[..5]).is_err(), "operand count");
    assert!(k.check(&Params { rows_per_gate: 0, ..p }, &ok).is_err(), "rows_per_gate 0");
    assert!(k.check(&Params { b_off: 1, ..p }, &ok).is_err(), "bias offset");
    assert!(k.check(&Params { batch: 2, x_batch: (m * kk) as u32, ..p }, &ok).is_err(), "batch without room");
    let long = Params { k: 70_000, x_row: 70_000, ..p };
    let long_ok = [(DType::F32, m * 70_000), (DType::BF16, 70_000 * n), ok[2], ok[3], ok[4], ok[5]];
    assert!(k.check(&long, &long_ok).is_err(), "K past llvmpipe's loop budget");
    Matmul { tiling: Tiling::Workgroup(Block::LARGE), ..k }.check(&long, &long_ok).unwrap();
    let v4 = Matmul { tiling: Tiling::Workgroup(Block::SMALL), x_vec4: true, ..k };
    assert!(v4.check(&p, &ok).is_err(), "vec4 X with k = 30");
    let p32 = Params { k: 32, x_row: 32, ..p };
    let ok32 = [(DType::F32, m * 32), (DType::BF16, 32 * n), ok[2], ok[3], ok[4], ok[5]];
    v4.check(&p32, &ok32).unwrap();
    assert!(Matmul { x_vec4: true, ..k }.check(&p32, &ok32).is_err(), "vec4 X in a register tiling");
    // Nothing is read or written for an empty product.
    k.check(
        &Params::dense(0, n, kk),
        &[(DType::F32, 0), (DType::BF16, 0), (DType::F32, 0), (DType::F32, 0), (DType::F32, 0), (DType::F32, 0)],
    )
    .unwrap();
}

#[test]
fn for_device_picks_register_tiles_on_cpus_and_workgroup_tiles_on_gpus() {
    let caps = Capabilities::baseline;
    let pick = |caps: &Capabilities, p: &Params| Matmul::for_device(caps, DType::BF16, false, Act::None, Residual::None, p);
    let (cpu, gpu16) = (caps(DeviceKind::Cpu), caps(DeviceKind::Gpu));
    let gpu32 = Capabilities { workgroup_storage: 32768, ..gpu16 };
    assert!(matches!(pick(&cpu, &Params::dense(1024, 1024, 1024)).tiling, Tiling::Register(16, 32)));
    assert!(matches!(pick(&cpu, &Params::dense(1, 64, 64)).tiling, Tiling::Register(_, _)));
    // 128×128 blocks for large products, 16 deep where 16.25 KiB of workgroup memory is there.
    let big = pick(&gpu32, &Params::dense(4680, 1536, 1536));
    assert!(big.tiling == Tiling::Workgroup(Block::LARGE) && big.x_vec4, "{big}");
    assert_eq!(pick(&gpu16, &Params::dense(4680, 1536, 1536)).tiling, Tiling::Workgroup(Block::LARGE_SHALLOW));
    // 64×64 for few rows, or too few large blocks to fill a GPU (text projections).
    for p in [Params::dense(1, 1536, 1536), Params::dense(100, 8192, 256), Params::dense(512, 4096, 4096)] {
        assert_eq!(pick(&gpu32, &p).tiling, Tiling::Workgroup(Block::SMALL), "{p:?}");
    }
    assert!(!pick(&gpu32, &Params::dense(64, 64, 30)).x_vec4);
    // Matrix units where the device was opened with them (and with f16 and subgroups), for
    // products with a block of rows; four subgroups of the largest size make a workgroup.
    let coop = Capabilities {
        f16: true,
        subgroups: true,
        subgroup_min: 32,
        subgroup_max: 64,
        coop_matrix: Some(CoopMatrix { size: 16 }),
        ..gpu32
    };
    assert_eq!(pick(&coop, &Params::dense(512, 4096, 4096)).tiling, Tiling::Coop(Coop { size: 16, subgroup_max: 64 }));
    assert_eq!(pick(&coop, &Params::dense(63, 4096, 4096)).tiling, Tiling::Workgroup(Block::SMALL));
    let small_subgroups = Capabilities { subgroup_min: 8, subgroup_max: 16, coop_matrix: Some(CoopMatrix { size: 8 }), ..coop };
    assert_eq!(pick(&small_subgroups, &Params::dense(512, 4096, 4096)).tiling, Tiling::Coop(Coop { size: 8, subgroup_max: 32 }));
    for without in
        [Capabilities { f16: false, ..coop }, Capabilities { subgroup_max: 128, ..coop }, Capabilities { coop_matrix: None, ..coop }]
    {
        assert!(matches!(pick(&without, &Params::dense(512, 4096, 4096)).tiling, Tiling::Workgroup(_)), "{without:?}");
    }
}
