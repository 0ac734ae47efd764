//! Causal conv3d against an f64 reference: every kernel shape of the Wan VAE, the
//! frame cache (zeros, real frames, a frame masked to zero), the fused 2× upsample,
//! the residual, bf16 weights, row bands, and streaming equal to one long call.
use runtime::kernels::conv3d::{reference, repack, Conv3d, Params};
use runtime::DType;
use videossm_suite::{assert_close, gpu, Rng};

struct Case {
    p: Params,
    k: Conv3d,
    cache: Vec<f32>,
    src: Vec<f32>,
    w: Vec<f32>,
    bias: Vec<f32>,
    res: Vec<f32>,
}

fn case(rng: &mut Rng, frames: usize, h: usize, w: usize, cin: usize, cout: usize, k: (usize, usize, usize), k_spec: Conv3d) -> Case {
    let p = Params::new(frames, h, w, cin, cout, k, k_spec.upsample);
    let frame = h * w * cin;
    let out = frames * p.rows as usize * p.out_w(k_spec.upsample) as usize * cout;
    let wts: Vec<f32> = rng.normals(cout * cin * k.0 * k.1 * k.2, 0.3).into_iter().map(|v| k_spec.w_dtype.round(v)).collect();
    Case {
        p,
        k: k_spec,
        // An f16 cache holds f16 values: rounded here, so the reference sees what the kernel reads.
        cache: rng.normals(2 * frame, 1.0).into_iter().map(|v| if k_spec.cache_f16 { DType::F16.round(v) } else { v }).collect(),
        src: rng.normals(frames * frame, 1.0),
        w: wts,
        bias: rng.normals(cout, 0.5),
        res: rng.normals(out, 1.0),
    }
}

fn run(c: &Case) -> Vec<f32> {
    let gpu = gpu();
    let p = &c.p;
    let up = |n: &str, v: &[f32], dt: DType| gpu.upload(n, &[v.len()], dt, v).unwrap();
    let packed = repack(&c.w, p.cout as usize, p.cin as usize, p.kt as usize, p.kh as usize, p.kw as usize);
    let (tc, ts, tw, tb) = (
        up("cache", &c.cache, if c.k.cache_f16 { DType::F16 } else { DType::F32 }),
        up("src", &c.src, DType::F32),
        up("w", &packed, c.k.w_dtype),
        up("bias", &c.bias, DType::F32),
    );
    let n = p.frames as usize * p.rows as usize * p.out_w(c.k.upsample) as usize * p.cout as usize;
    let ty = gpu.empty("y", &[n], DType::F32).unwrap();
    let tr = up("res", &c.res[..n], DType::F32);
    let mut args = vec![&tc, &ts, &tw, &tb];
    if c.k.residual {
        args.push(&tr);
    }
    args.push(&ty);
    gpu.run(&c.k, p, &args).unwrap();
    gpu.download(&ty).unwrap()
}

fn check(c: &Case, what: &str) {
    let n = c.p.frames as usize * c.p.rows as usize * c.p.out_w(c.k.upsample) as usize * c.p.cout as usize;
    let want = reference(&c.p, c.k.upsample, &c.cache, &c.src, &c.w, &c.bias, c.k.residual.then(|| &c.res[..n]));
    // f32 sums of up to 27·Cin products of unit-scale values.
    let tol = 2e-6 * ((c.p.kt * c.p.kh * c.p.kw * c.p.cin) as f64).sqrt();
    assert_close(what, &run(c), &want, tol, tol);
}

#[test]
fn every_kernel_shape_with_caches_and_odd_sizes() {
    let mut rng = Rng::new(31);
    for &(frames, h, w, cin, cout, k) in &[
        (2, 3, 5, 8, 16, (3, 3, 3)),
        (1, 1, 1, 3, 3, (3, 3, 3)),
        (3, 7, 5, 33, 8, (3, 3, 3)),
        (2, 5, 3, 16, 16, (1, 1, 1)),
        (2, 4, 4, 8, 16, (3, 1, 1)),
        (1, 5, 7, 8, 3, (1, 3, 3)),
    ] {
        let mut c = case(&mut rng, frames, h, w, cin, cout, k, Conv3d::new(DType::F32, false, false, cout));
        check(&c, &format!("{} {k:?} {frames}x{h}x{w}x{cin}->{cout}", c.k));
        // The video's first frame counts as zero when the temporal upsample looks back.
        c.p.cache_scale0 = 0.0;
        check(&c, &format!("{k:?} with a masked cache frame"));
        c.cache.iter_mut().for_each(|v| *v = 0.0);
        check(&c, &format!("{k:?} at the start of the video"));
    }
}

#[test]
fn every_tile_and_a_reduction_past_the_loop_budget() {
    // 27 taps × 400 channels: with a rolled channel step, llvmpipe's 65535-iteration
    // budget per invocation would cut the reduction short.
    let mut rng = Rng::new(34);
    for tile in [(8, 1), (8, 3), (4, 4), (4, 12)] {
        for &(cin, cout) in &[(5, 3), (8, 19), (400, 9)] {
            let c = case(&mut rng, 2, 3, 5, cin, cout, (3, 3, 3), Conv3d { tile, ..Conv3d::new(DType::F32, false, false, cout) });
            check(&c, &format!("{} {cin}->{cout}", c.k));
        }
    }
}

#[test]
fn fused_upsample_residual_bf16_and_bands() {
    let mut rng = Rng::new(32);
    let c = case(&mut rng, 2, 3, 4, 8, 12, (1, 3, 3), Conv3d::new(DType::F32, true, false, 16));
    check(&c, "upsample");
    let c = case(&mut rng, 2, 3, 4, 8, 12, (3, 3, 3), Conv3d::new(DType::BF16, false, true, 16));
    check(&c, "bf16 + residual");
    // A band of rows equals the same rows of the whole conv.
    let mut c = case(&mut rng, 2, 6, 5, 8, 8, (3, 3, 3), Conv3d::new(DType::F32, false, false, 16));
    let whole = run(&c);
    (c.p.y0, c.p.rows) = (2, 3);
    let band = run(&c);
    let row = 5 * 8;
    for t in 0..2 {
        assert_close("band", &band[t * 3 * row..(t + 1) * 3 * row], &whole[(t * 6 + 2) * row..(t * 6 + 5) * row], 1e-6, 1e-6);
    }
}

#[test]
fn streaming_with_the_cache_carried_equals_one_call() {
    // Frames 0..5 in one call vs frames 0..2 then 2..5 with the last two inputs as cache.
    let mut rng = Rng::new(33);
    let spec = Conv3d::new(DType::F32, false, false, 16);
    let mut whole = case(&mut rng, 5, 3, 4, 8, 8, (3, 3, 3), spec);
    whole.cache.iter_mut().for_each(|v| *v = 0.0);
    let all = run(&whole);
    let frame = 3 * 4 * 8;
    let mut first = Case {
        p: Params::new(2, 3, 4, 8, 8, (3, 3, 3), false),
        src: whole.src[..2 * frame].to_vec(),
        ..case(&mut rng, 2, 3, 4, 8, 8, (3, 3, 3), spec)
    };
    (first.cache, first.w, first.bias) = (whole.cache.clone(), whole.w.clone(), whole.bias.clone());
    let mut second = Case {
        p: Params::new(3, 3, 4, 8, 8, (3, 3, 3), false),
        src: whole.src[2 * frame..].to_vec(),
        ..case(&mut rng, 3, 3, 4, 8, 8, (3, 3, 3), spec)
    };
    (second.cache, second.w, second.bias) = (whole.src[..2 * frame].to_vec(), whole.w.clone(), whole.bias.clone());
    let streamed: Vec<f32> = run(&first).into_iter().chain(run(&second)).collect();
    assert_close("streamed", &streamed, &all, 1e-6, 1e-6);
}

#[test]
fn f16_caches_in_both_tilings() {
    // The VAE's frame caches in f16 (16-bit weights on adapters with shader-f16).
    if !gpu().caps.f16 {
        eprintln!("f16 caches: skipped, this adapter has no shader-f16 (they are never chosen there)");
        return;
    }
    let mut rng = Rng::new(37);
    for workgroup in [false, true] {
        for &(frames, h, w, cin, cout, k) in &[(2, 5, 6, 19, 40, (3, 3, 3)), (1, 3, 3, 8, 3, (3, 1, 1)), (3, 4, 4, 16, 16, (3, 3, 3))] {
            let k_spec = Conv3d { workgroup, cache_f16: true, ..Conv3d::new(DType::BF16, false, false, cout) };
            let mut c = case(&mut rng, frames, h, w, cin, cout, k, k_spec);
            check(&c, &format!("{} {k:?} {frames}x{h}x{w}x{cin}->{cout}", c.k));
            c.p.cache_scale0 = 0.0;
            check(&c, &format!("{} {k:?} with a masked cache frame", c.k));
        }
    }
}

#[test]
fn workgroup_blocks_on_and_off_the_block_size() {
    // The GPU tiling: 64 pixels × 64 channels a block, 16 input channels a stage. Pixels
    // and channels on both sides of a block edge, channel counts off the stage, the cache
    // with a masked frame, the fused upsample, the residual, bf16 weights, a band.
    let mut rng = Rng::new(35);
    let wg = |w_dtype, upsample, residual, cout| Conv3d { workgroup: true, ..Conv3d::new(w_dtype, upsample, residual, cout) };
    for &(frames, h, w, cin, cout, k) in &[
        (2, 9, 8, 33, 70, (3, 3, 3)),
        (1, 8, 8, 16, 64, (3, 3, 3)),
        (3, 3, 5, 5, 3, (3, 1, 1)),
        (2, 5, 3, 400, 9, (1, 3, 3)),
        (1, 1, 1, 3, 3, (3, 3, 3)),
    ] {
        let mut c = case(&mut rng, frames, h, w, cin, cout, k, wg(DType::F32, false, false, cout));
        check(&c, &format!("{} {k:?} {frames}x{h}x{w}x{cin}->{cout}", c.k));
        c.p.cache_scale0 = 0.0;
        check(&c, &format!("{} {k:?} with a masked cache frame", c.k));
    }
    let c = case(&mut rng, 2, 5, 6, 8, 40, (1, 3, 3), wg(DType::F32, true, false, 40));
    check(&c, "workgroup upsample");
    let mut c = case(&mut rng, 2, 6, 5, 20, 36, (3, 3, 3), wg(DType::BF16, false, true, 36));
    check(&c, "workgroup bf16 + residual");
    (c.p.y0, c.p.rows) = (2, 3);
    check(&c, "workgroup band");
}

#[test]
fn the_chooser_gives_gpus_workgroup_blocks_for_wide_outputs() {
    use runtime::{Capabilities, DeviceKind};
    let pick = |kind, cout| Conv3d::for_device(&Capabilities::baseline(kind), DType::BF16, false, false, cout).workgroup;
    assert!(pick(DeviceKind::Gpu, 384) && pick(DeviceKind::Gpu, 32));
    assert!(!pick(DeviceKind::Gpu, 3), "the 3-channel head keeps narrow register columns");
    assert!(!pick(DeviceKind::Cpu, 384), "software adapters keep the register tiling");
}
