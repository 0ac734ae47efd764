//! Row norms against their f64 CPU reference: every statistic × scaling, odd widths,
//! strided views, per-frame modulation.
use runtime::kernels::norm::{reference, Norm, Params, Scale, Stat};
use runtime::DType;
use videossm_suite::{assert_close, gpu, Rng};

#[test]
fn every_variant_matches_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(3);
    for stat in [Stat::Layer, Stat::Rms, Stat::L2] {
        for scale in [Scale::None, Scale::Weight, Scale::Affine, Scale::Modulated] {
            for (silu, serial) in [(false, false), (true, true), (false, true)] {
                for &(rows, d) in &[(1usize, 1usize), (7, 7), (24, 64), (5, 1536), (3, 5120), (130, 16)] {
                    let k = Norm { stat, scale, silu, serial };
                    // Input is a column block [2, 2+d) of rows of width d+3; output rows of width d+1.
                    let mut p = Params::dense(rows, d, 1e-6);
                    p.in_off = 2;
                    p.in_row = (d + 3) as u32;
                    p.out_row = (d + 1) as u32;
                    p.gain = (d as f32).sqrt();
                    let frames = rows.div_ceil(4);
                    let (a_len, b_len) = match scale {
                        Scale::Modulated => {
                            p.frame_rows = 4;
                            p.mod_row = 6 * d as u32;
                            p.shift_off = 3 * d as u32;
                            p.scale_off = 4 * d as u32;
                            (frames * 6 * d, 1)
                        }
                        _ => (d, d),
                    };
                    let x: Vec<f32> = rng.normals(2 + rows * (d + 3), 1.0).iter().map(|v| v + 0.3).collect();
                    let a = rng.normals(a_len, 0.5);
                    let b = rng.normals(b_len, 0.5);
                    let tx = gpu.upload("x", &[x.len()], DType::F32, &x).unwrap();
                    let ta = gpu.upload("a", &[a.len()], DType::F32, &a).unwrap();
                    let tb = gpu.upload("b", &[b.len()], DType::F32, &b).unwrap();
                    let ty = gpu.empty("y", &[rows * (d + 1)], DType::F32).unwrap();
                    let args = match scale {
                        Scale::None => vec![&tx, &ty],
                        Scale::Weight | Scale::Modulated => vec![&tx, &ta, &ty],
                        Scale::Affine => vec![&tx, &ta, &tb, &ty],
                    };
                    gpu.run(&k, &p, &args).unwrap();
                    let mut want = vec![0.0; rows * (d + 1)];
                    reference(&k, &p, &x, &a, &b, &mut want);
                    // f32 sums of d squares: relative error ~ d·ε in the statistics at worst.
                    assert_close(&format!("{k} rows={rows} d={d}"), &gpu.download(&ty).unwrap(), &want, 2e-5, 2e-5);
                }
            }
        }
    }
}
