//! Strided copies: patchify/unpatchify, upsampling, layout changes and frame splits
//! against their definitions written as plain loops; row writes, broadcasts and the
//! generic reference; fill;
//! f32 into an f16 cache. Copies move bits, so every comparison is exact but the f16
//! one's, held to f16's rounding.
use runtime::kernels::copy::{f16_saturating, reference, Copy, Fill, FillParams, Params};
use runtime::{DType, Kernel};
use videossm_suite::{gpu, Rng};

fn run(p: &Params, src: &[f32], dst_len: usize) -> Vec<f32> {
    let gpu = gpu();
    let ts = gpu.upload("src", &[src.len()], DType::F32, src).unwrap();
    let td = gpu.upload("dst", &[dst_len], DType::F32, &vec![-7.0; dst_len]).unwrap();
    gpu.run(&Copy::F32, p, &[&ts, &td]).unwrap();
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
        Params::new(&[1, 1], 5, &[3, 1], 9, &[2, 1]),
        Params::new(&[4, 1, 6, 1, 5], 3, &[30, 99, 5, 77, 1], 2, &[1, 99, 4, 77, 24]),
    ];
    for (i, p) in cases.iter().enumerate() {
        let dst_len = 140_000;
        let got = run(p, &src, dst_len);
        let mut want = vec![-7.0; dst_len];
        reference(p, &src, &mut want);
        assert_eq!(got, want, "case {i}");
    }
}

#[test]
fn upsample2x_repeats_each_pixel_in_a_2x2_block() {
    let (f, h, w, c) = (2, 3, 5, 7);
    let x: Vec<f32> = (0..f * h * w * c).map(|i| i as f32).collect();
    let got = run(&Params::upsample2x(f, h, w, c), &x, f * 4 * h * w * c);
    for fi in 0..f {
        for y in 0..2 * h {
            for xx in 0..2 * w {
                for ci in 0..c {
                    let want = x[((fi * h + y / 2) * w + xx / 2) * c + ci];
                    assert_eq!(got[((fi * 2 * h + y) * 2 * w + xx) * c + ci], want, "frame {fi} ({y},{xx}) c {ci}");
                }
            }
        }
    }
}

#[test]
fn channel_layouts_round_trip() {
    let (f, c, px) = (3, 5, 11);
    let x: Vec<f32> = (0..f * c * px).map(|i| i as f32).collect();
    let last = run(&Params::to_channels_last(f, c, px), &x, x.len());
    for fi in 0..f {
        for ci in 0..c {
            for q in 0..px {
                assert_eq!(last[(fi * px + q) * c + ci], x[(fi * c + ci) * px + q]);
            }
        }
    }
    assert_eq!(run(&Params::to_channels_first(f, px, c), &last, x.len()), x);
}

#[test]
fn split_frames_matches_the_vae_reshape() {
    // torch: x [C2=2C, F, h, w] → reshape (2, C, F, h, w) → stack over k on a new axis
    // after F → [C, F, 2, h, w]: frame 2f+k, channel c is input channel k·C + c.
    let (f, px, c) = (3, 4, 6);
    let x: Vec<f32> = (0..f * px * 2 * c).map(|i| i as f32).collect();
    let got = run(&Params::split_frames(f, px, c), &x, x.len());
    for fi in 0..f {
        for k in 0..2 {
            for q in 0..px {
                for ci in 0..c {
                    assert_eq!(got[((2 * fi + k) * px + q) * c + ci], x[(fi * px + q) * 2 * c + k * c + ci]);
                }
            }
        }
    }
}

#[test]
fn check_rejects_copies_past_either_end() {
    let p = Params::rows(7, 64, 3, 11);
    assert_eq!(p.extents(), (10 * 64, 18 * 64));
    let f32s = |src: usize, dst: usize| [(DType::F32, src), (DType::F32, dst)];
    assert!(Copy::F32.check(&p, &f32s(10 * 64, 18 * 64)).is_ok());
    assert!(Copy::F32.check(&p, &f32s(10 * 64 - 1, 18 * 64)).is_err());
    assert!(Copy::F32.check(&p, &f32s(10 * 64, 18 * 64 - 1)).is_err());
    // Recording the dispatch runs the same check, in every build (release shaders are unclamped).
    let gpu = gpu();
    let (src, dst) = (gpu.empty("src", &[10 * 64], DType::F32).unwrap(), gpu.empty("dst", &[18 * 64 - 1], DType::F32).unwrap());
    let e = gpu.program().push(&Copy::F32, &p, &[&src, &dst]).err().expect("an out-of-range copy was recorded").to_string();
    assert!(e.contains("copy_strided") && e.contains("1151-element destination"), "{e}");
    assert_eq!(Params::rows(0, 64, 3, 11).extents(), (0, 0));
    // Contiguous rows merge into one dim; a transpose keeps its two.
    assert_eq!(p.dims, 1);
    assert_eq!(Params::to_channels_last(1, 5, 11).dims, 2);
}

#[test]
fn fill_writes_exactly_its_range() {
    // Past 65535 workgroups of 256, so the grid folds.
    let n = 65_535 * 256 + 300;
    let gpu = gpu();
    let td = gpu.upload("dst", &[n + 5], DType::F32, &vec![-7.0; n + 5]).unwrap();
    gpu.run(&Fill, &FillParams { numel: n as u32, dst_off: 3, value: 0.5, _pad: 0 }, &[&td]).unwrap();
    let got = gpu.download(&td).unwrap();
    assert_eq!(&got[..3], &[-7.0; 3]);
    assert!(got[3..3 + n].iter().all(|&v| v == 0.5));
    assert_eq!(&got[3 + n..], &[-7.0; 2]);
}

#[test]
fn f32_rows_into_an_f16_cache_round_to_nearest_and_saturate() {
    let gpu = gpu();
    let into_f16 = Copy { src_f16: false, dst_f16: true };
    if !gpu.caps.f16 {
        eprintln!("{into_f16}: skipped, this adapter has no shader-f16 (the f16 KV cache is never chosen there)");
        return;
    }
    let mut rng = Rng::new(8);
    // Normals at several scales, f16's subnormals and values beyond its range.
    let mut src = rng.normals(3000, 1.0);
    for (i, x) in src.iter_mut().enumerate() {
        *x *= [1.0, 1e-3, 3e-6, 1e2, 1e5][i % 5];
    }
    // Odd widths and offsets: rows start and end mid-word, so neighbouring halves of a
    // u32 are written by different invocations (or not at all) and must stay intact.
    let cases =
        [Params::rows(7, 63, 3, 11), Params::rows(1, 5, 0, 1), Params::rows(40, 37, 1, 0), Params::new(&[65_536 + 3], 0, &[1], 1, &[1])];
    for (i, p) in cases.iter().enumerate() {
        let src = &src.iter().cycle().take(70_000).copied().collect::<Vec<_>>();
        let dst_len = 70_001;
        let ts = gpu.upload("src", &[src.len()], DType::F32, src).unwrap();
        let td = gpu.upload("dst", &[dst_len], DType::F16, &vec![-7.0; dst_len]).unwrap();
        gpu.run(&into_f16, p, &[&ts, &td]).unwrap();
        let got = gpu.download(&td).unwrap();
        let mut want = vec![-7.0; dst_len];
        reference(p, src, &mut want);
        let mut exact = vec![-7.0; dst_len];
        reference(p, &src.iter().map(|&x| f16_saturating(x)).collect::<Vec<_>>(), &mut exact);
        for (e, ((&g, &w), &x)) in got.iter().zip(&want).zip(&exact).enumerate() {
            // Round to nearest: within half an ulp, 2⁻¹¹ relative (2⁻²⁵ absolute among
            // subnormals); saturated values and untouched slots exactly.
            let (g, w) = (g as f64, w as f64);
            let ok = if w.abs() > 65504.0 || x == -7.0 { g == x as f64 } else { (g - w).abs() <= w.abs() / 2048.0 + 2f64.powi(-25) };
            assert!(ok, "case {i}: element {e} is {g}, f32 {w} rounds to {x} (f16 unit roundoff 2⁻¹¹)");
        }
    }
    // The kernel checks what it is bound to: f32 into f16 only.
    let ok = [(DType::F32, 100), (DType::F16, 100)];
    into_f16.check(&Params::rows(2, 50, 0, 0), &ok).unwrap();
    assert!(into_f16.check(&Params::rows(2, 50, 0, 0), &[(DType::F32, 100), (DType::F32, 100)]).is_err());
    assert!(into_f16.check(&Params::rows(2, 50, 0, 1), &ok).is_err(), "one row past the end");
}

#[test]
fn f16_caches_copy_out_and_between_each_other_exactly() {
    // The VAE's f16 frame caches are read into f32 halos and shifted f16 to f16.
    let gpu = gpu();
    if !gpu.caps.f16 {
        eprintln!("copies from f16: skipped, this adapter has no shader-f16 (f16 caches are never chosen there)");
        return;
    }
    let mut rng = Rng::new(12);
    let src: Vec<f32> = rng.normals(5000, 3.0).iter().map(|&x| f16_saturating(x)).collect();
    let ts = gpu.upload("src", &[src.len()], DType::F16, &src).unwrap();
    for (p, dst_f16) in [(Params::rows(9, 77, 2, 5), false), (Params::rows(9, 77, 2, 5), true), (Params::to_channels_last(3, 33, 7), false)]
    {
        let dst_len = 1200;
        let dtype = if dst_f16 { DType::F16 } else { DType::F32 };
        let td = gpu.upload("dst", &[dst_len], dtype, &vec![-7.0; dst_len]).unwrap();
        let kernel = Copy { src_f16: true, dst_f16 };
        gpu.run(&kernel, &p, &[&ts, &td]).unwrap();
        let mut want = vec![-7.0; dst_len];
        reference(&p, &src, &mut want);
        assert_eq!(gpu.download(&td).unwrap(), want, "{kernel}");
        assert!(kernel.check(&p, &[(DType::F32, 5000), (dtype, dst_len)]).is_err(), "{kernel} bound to an f32 source");
    }
}
