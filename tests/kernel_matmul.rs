//! Matmul against its f64 CPU reference over shapes on and off the tile, every
//! epilogue, every weight dtype, strided views and batches.
use runtime::kernels::matmul::{reference, Act, Matmul, Params, RefArgs, Residual, Tiling, VARIANTS};
use runtime::DType;
use videossm_suite::{assert_close, gpu, Rng};

/// Runs one call on the GPU and on the CPU; the tolerance grows with √K because
/// f32 accumulation error is a random walk over K products.
fn check(k: &Matmul, p: &Params, x_len: usize, w_len: usize, y_len: usize, seed: u64) {
    check_variants(k, p, x_len, w_len, y_len, seed, &VARIANTS);
}

fn check_variants(k: &Matmul, p: &Params, x_len: usize, w_len: usize, y_len: usize, seed: u64, variants: &[(Tiling, bool)]) {
    let gpu = gpu();
    let mut rng = Rng::new(seed);
    let x = rng.normals(x_len, 1.0);
    let w: Vec<f32> = rng.normals(w_len, 0.3).into_iter().map(|v| k.w_dtype.round(v)).collect();
    let bias = rng.normals(p.n as usize, 0.5);
    let res = rng.normals(y_len.max(p.r_off as usize + p.m as usize * p.r_row as usize), 1.0);
    let gate_len = p.g_off as usize + (p.m as usize).div_ceil(p.rows_per_gate as usize) * p.g_row as usize;
    let gate = rng.normals(gate_len.max(1), 1.0);
    let y0 = rng.normals(y_len, 1.0);
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
    for &(tiling, x_vec4) in variants {
        let aligned = [p.x_off, p.x_row, p.x_batch, p.k].iter().all(|v| v % 4 == 0);
        if x_vec4 && !aligned {
            continue;
        }
        let variant = Matmul { tiling, x_vec4, ..*k };
        gpu.write(&ty, &y0).unwrap();
        gpu.run(&variant, p, &args).unwrap();
        check_result(&variant, p, &gpu.download(&ty).unwrap(), &x, &w, &bias, &res, &gate, &y0);
    }
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
    let tol = 2e-6 * (p.k as f64).sqrt();
    assert_close(&format!("{k} m={} n={} k={} batch={}", p.m, p.n, p.k, p.batch), got, &want, tol, tol);
}

#[test]
fn dense_shapes_on_and_off_the_tile() {
    let k = Matmul::new(DType::F32, false, Act::None, Residual::None);
    for (i, &(m, n, kk)) in
        [(1, 1, 1), (1, 64, 64), (32, 32, 32), (33, 31, 17), (5, 130, 7), (64, 48, 1100), (97, 3, 256)].iter().enumerate()
    {
        check(&k, &Params::dense(m, n, kk), m * kk, n * kk, m * n, i as u64);
    }
}

#[test]
fn every_epilogue_and_weight_dtype() {
    let (m, n, kk) = (37, 45, 70);
    let mut seed = 100;
    for w in [DType::F32, DType::F16, DType::BF16] {
        for bias in [false, true] {
            for act in [Act::None, Act::Gelu, Act::Silu] {
                for res in [Residual::None, Residual::Add, Residual::Gated] {
                    let mut p = Params::dense(m, n, kk);
                    // Gate rows per frame of 6 tokens, read from slot 2 of a [F, 6, N] modulation.
                    p.rows_per_gate = 6;
                    p.g_row = 6 * n as u32;
                    p.g_off = 2 * n as u32;
                    seed += 1;
                    // Each combination runs on two tilings in rotation, so every tiling
                    // meets every dtype and epilogue without compiling all 270 pipelines.
                    let pick = [VARIANTS[seed as usize % VARIANTS.len()], VARIANTS[(seed as usize + 2) % VARIANTS.len()]];
                    check_variants(&Matmul::new(w, bias, act, res), &p, m * kk, n * kk, m * n, seed, &pick);
                }
            }
        }
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
