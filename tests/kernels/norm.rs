//! Row norms and softmax against their f64 CPU reference: every statistic × scaling ×
//! schedule, odd widths, strided views, per-frame modulation, rows far from zero mean,
//! and more rows than one dispatch dimension holds.
use runtime::kernels::norm::{reference, Norm, Params, Scale, Schedule, Stat};
use runtime::DType;
use videossm_suite::{assert_close, gpu, Rng};

/// Schedules this adapter can run (subgroups are absent on GL).
fn schedules() -> Vec<Schedule> {
    Schedule::ALL.into_iter().filter(|&s| s != Schedule::Subgroup || gpu().caps.subgroups).collect()
}

/// Runs `k` on rows of width `d` read from columns [2, 2+d) of rows of width d+3 and
/// written to rows of width d+1 at offset 1; returns (gpu, reference).
fn run(k: Norm, rows: usize, d: usize, x: &[f32], p: &mut Params, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
    let gpu = gpu();
    p.in_off = 2;
    p.in_row = (d + 3) as u32;
    p.out_off = 1;
    p.out_row = (d + 1) as u32;
    let (a_len, b_len) = match k.scale {
        Scale::Modulated => {
            // A [F, 6, d] modulation tensor (MODEL.md), shift = slot 3, scale = slot 4, 4 rows per frame.
            p.frame_rows = 4;
            p.mod_row = 6 * d as u32;
            p.shift_off = 3 * d as u32;
            p.scale_off = 4 * d as u32;
            (rows.div_ceil(4) * 6 * d, 1)
        }
        _ => (d, d),
    };
    let a = rng.normals(a_len, 0.5);
    let b = rng.normals(b_len, 0.5);
    let out_len = 1 + rows * (d + 1);
    let tx = gpu.upload("x", &[x.len()], DType::F32, x).unwrap();
    let ta = gpu.upload("a", &[a.len()], DType::F32, &a).unwrap();
    let tb = gpu.upload("b", &[b.len()], DType::F32, &b).unwrap();
    // Pre-filled so the untouched gap columns are checked too.
    let ty = gpu.upload("y", &[out_len], DType::F32, &vec![-7.0; out_len]).unwrap();
    let args = match k.scale {
        Scale::None => vec![&tx, &ty],
        Scale::Weight | Scale::Modulated => vec![&tx, &ta, &ty],
        Scale::Affine => vec![&tx, &ta, &tb, &ty],
    };
    gpu.run(&k, p, &args).unwrap();
    let mut want = vec![-7.0; out_len];
    reference(&k, p, x, &a, &b, &mut want);
    (gpu.download(&ty).unwrap(), want)
}

#[test]
fn every_variant_matches_reference() {
    let mut rng = Rng::new(3);
    let mut kernels = Vec::new();
    for schedule in schedules() {
        for stat in [Stat::Layer, Stat::Rms, Stat::L2] {
            for (i, scale) in [Scale::None, Scale::Weight, Scale::Affine, Scale::Modulated].into_iter().enumerate() {
                kernels.push(Norm { stat, scale, silu: i % 2 == 1, schedule });
            }
        }
        kernels.push(Norm { stat: Stat::Layer, scale: Scale::Modulated, silu: false, schedule });
        kernels.push(Norm { stat: Stat::Rms, scale: Scale::Weight, silu: true, schedule });
        kernels.push(Norm { stat: Stat::Softmax, scale: Scale::None, silu: false, schedule });
    }
    for k in kernels {
        for &(rows, d) in &[(1usize, 1usize), (7, 7), (24, 64), (5, 1536), (3, 5120), (130, 16), (9, 65)] {
            let mut p = Params::dense(rows, d, 1e-6);
            p.gain = if k.stat == Stat::Softmax { 0.7 } else { (d as f32).sqrt() };
            let x: Vec<f32> = rng.normals(2 + rows * (d + 3), 1.0).iter().map(|v| v + 0.3).collect();
            let (got, want) = run(k, rows, d, &x, &mut p, &mut rng);
            // f32 sums of d terms: relative error ~ √d·ε in the statistics, far below 2e-5.
            assert_close(&format!("{k} rows={rows} d={d}"), &got, &want, 2e-5, 2e-5);
        }
    }
}

#[test]
fn statistics_survive_a_large_offset() {
    // |mean| = 1000 ≫ std = 1: E[x²] − mean² in f32 would lose every digit of the
    // variance; softmax logits of ~1000 overflow exp without the max subtracted.
    let mut rng = Rng::new(17);
    for schedule in schedules() {
        for stat in [Stat::Layer, Stat::Softmax] {
            let k = Norm { stat, scale: Scale::None, silu: false, schedule };
            let (rows, d) = (6, 1536);
            let x: Vec<f32> = rng.normals(2 + rows * (d + 3), 1.0).iter().map(|v| v + 1000.0).collect();
            let mut p = Params::dense(rows, d, 1e-6);
            let (got, want) = run(k, rows, d, &x, &mut p, &mut rng);
            // Inputs carry ulp(1000) ≈ 6e-5 absolute, i.e. 6e-5 relative to std = 1.
            assert_close(&format!("{k} offset 1000"), &got, &want, 2e-4, 2e-4);
        }
    }
}

#[test]
fn rows_beyond_one_dispatch_dimension() {
    // Workgroup-per-row schedules fold at 65535 rows, the serial one at 65535·64 rows.
    let mut rng = Rng::new(23);
    for schedule in schedules() {
        let rows = if schedule == Schedule::Serial { 65_535 * 64 + 70 } else { 65_535 + 70 };
        let d = 2;
        let k = Norm { stat: Stat::Rms, scale: Scale::None, silu: false, schedule };
        let x = rng.normals(2 + rows * (d + 3), 1.0);
        let mut p = Params::dense(rows, d, 1e-6);
        let (got, want) = run(k, rows, d, &x, &mut p, &mut rng);
        assert_close(&format!("{k} rows={rows}"), &got, &want, 2e-5, 2e-5);
    }
}
