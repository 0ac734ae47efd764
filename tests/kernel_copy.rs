//! Strided copies: patchify/unpatchify against the spec's definition, row writes,
//! broadcasts, and the generic reference.
use runtime::kernels::copy::{reference, Copy, Params};
use runtime::DType;
use videossm_suite::{gpu, Rng};

fn run(p: &Params, src: &[f32], dst_len: usize) -> Vec<f32> {
    let gpu = gpu();
    let ts = gpu.upload("src", &[src.len()], DType::F32, src).unwrap();
    let td = gpu.upload("dst", &[dst_len], DType::F32, &vec![-7.0; dst_len]).unwrap();
    gpu.run(&Copy, p, &[&ts, &td]).unwrap();
    gpu.download(&td).unwrap()
}

#[test]
fn patchify_flattens_patches_in_c_ph_pw_order() {
    let (f, c, h, w) = (2, 3, 4, 6);
    let x: Vec<f32> = (0..f * c * h * w).map(|i| i as f32).collect();
    let got = run(&Params::patchify(f, c, h, w), &x, x.len());
    let (hp, wp) = (h / 2, w / 2);
    for fi in 0..f {
        for r in 0..hp {
            for q in 0..wp {
                let tok = (fi * hp + r) * wp + q;
                for ci in 0..c {
                    for ph in 0..2 {
                        for pw in 0..2 {
                            let want = x[((fi * c + ci) * h + 2 * r + ph) * w + 2 * q + pw];
                            assert_eq!(got[tok * c * 4 + ci * 4 + ph * 2 + pw], want, "token {tok} c {ci} ({ph},{pw})");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn unpatchify_inverts_the_head_layout() {
    let (f, c, h, w) = (3, 16, 4, 4);
    let (hp, wp) = (h / 2, w / 2);
    let head: Vec<f32> = (0..f * c * h * w).map(|i| i as f32).collect();
    let got = run(&Params::unpatchify(f, c, h, w), &head, head.len());
    for fi in 0..f {
        for ci in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let tok = (fi * hp + y / 2) * wp + x / 2;
                    let want = head[tok * 4 * c + ((y % 2) * 2 + x % 2) * c + ci];
                    assert_eq!(got[((fi * c + ci) * h + y) * w + x], want);
                }
            }
        }
    }
}

#[test]
fn rows_broadcasts_and_generic_layouts_match_reference() {
    let mut rng = Rng::new(5);
    let src = rng.normals(4000, 1.0);
    let cases = [
        Params::rows(7, 64, 3, 11),
        Params::new(&[3, 5], 2, &[0, 1], 1, &[10, 2]),
        Params::new(&[2, 3, 4, 5, 2], 7, &[1, 2, 6, 24, 120], 0, &[120, 40, 10, 2, 1]),
        Params::new(&[65_536 * 2 + 9], 0, &[0], 0, &[1]),
    ];
    for (i, p) in cases.iter().enumerate() {
        let dst_len = 140_000;
        let got = run(p, &src, dst_len);
        let mut want = vec![-7.0; dst_len];
        reference(p, &src, &mut want);
        assert_eq!(got, want, "case {i}");
    }
}
