//! The memory kernels against f64 references. B.3: the chunked scan equals the
//! token-by-token recurrence, also across arbitrary chunk boundaries and ring runs.
//! The scans read v, β and a at cache slots and k̂ by position in the call, as a
//! session gathers it for the evicted tokens.
//! B.6: the chunked WY/UT delta rule and the token-by-token kernel both equal the
//! f64 delta rule, for every block length the adapter can run.
use runtime::kernels::ssm_scan::{
    reference_delta, reference_gates, reference_read, reference_read_delta, reference_scan, DeltaReadInputs, DeltaScan, Params, Ssm,
};
use runtime::{DType, Gpu, Kernel, Tensor};
use std::ops::Range;
use videossm_suite::{assert_close, gpu, Rng};

/// Per-slot values; a call's k̂ is gathered from `khat` in its token order ([`khat_rows`]).
struct Caches {
    khat: Vec<f32>,
    v: Vec<f32>,
    beta: Vec<f32>,
    decay: Vec<f32>,
}

fn unit_rows(x: &mut [f32], d: usize) {
    for row in x.chunks_mut(d) {
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= n);
    }
}

fn caches(rng: &mut Rng, slots: usize, heads: usize, d: usize, tiny_decay: bool) -> Caches {
    let mut khat = rng.normals(slots * heads * d, 1.0);
    unit_rows(&mut khat, d);
    let decay = (0..slots * heads).map(|_| if tiny_decay { 1e-6 } else { 0.5 + 0.5 * rng.uniform() as f32 }).collect();
    let beta = (0..slots * heads).map(|_| rng.uniform() as f32).collect();
    Caches { khat, v: rng.normals(slots * heads * d, 1.0), beta, decay }
}

fn up(gpu: &Gpu, n: &str, v: &[f32]) -> Tensor {
    up_as(gpu, n, v, DType::F32)
}

fn up_as(gpu: &Gpu, n: &str, v: &[f32], dtype: DType) -> Tensor {
    gpu.upload(n, &[v.len().max(1)], dtype, if v.is_empty() { &[0.0] } else { v }).unwrap()
}

/// The k̂ rows of the tokens at `order`, in that order (rows `row` wide).
fn khat_rows(c: &Caches, row: usize, order: impl IntoIterator<Item = usize>) -> Vec<f32> {
    order.into_iter().flat_map(|s| c.khat[s * row..][..row].iter().copied()).collect()
}

/// A call's k̂ (f32, its tokens in order) and the v cache as a session keeps it: f32, or f16 with `f16`.
fn up_call(gpu: &Gpu, c: &Caches, row: usize, runs: &[Range<usize>], f16: bool) -> (Tensor, Tensor) {
    let dtype = if f16 { DType::F16 } else { DType::F32 };
    (up(gpu, "khat", &khat_rows(c, row, runs.iter().flat_map(|r| r.clone()))), up_as(gpu, "v", &c.v, dtype))
}

/// B.3's f64 rule over the tokens at `order`.
fn reference_b3(c: &Caches, heads: usize, d: usize, s0: &[f32], order: &[usize]) -> Vec<f32> {
    let mut want: Vec<f64> = s0.iter().map(|&x| x as f64).collect();
    let khat = khat_rows(c, heads * d, order.iter().copied());
    reference_scan(&Params::scan(heads, d, &[]), order, &khat, &c.v, &c.beta, &c.decay, &mut want);
    want.iter().map(|&x| x as f32).collect()
}

/// Folds `calls` (each a list of ≤ 2 slot runs) on the GPU into a state starting at `s0`.
fn gpu_scan(c: &Caches, heads: usize, d: usize, s0: &[f32], calls: &[Vec<Range<usize>>]) -> Vec<f32> {
    gpu_scan_as(c, heads, d, s0, calls, false)
}

fn gpu_scan_as(c: &Caches, heads: usize, d: usize, s0: &[f32], calls: &[Vec<Range<usize>>], f16: bool) -> Vec<f32> {
    let gpu = gpu();
    let (b, a, s) = (up(gpu, "beta", &c.beta), up(gpu, "decay", &c.decay), up(gpu, "state", s0));
    for runs in calls {
        let (k, v) = up_call(gpu, c, heads * d, runs, f16);
        gpu.run(&Ssm::Scan { f16 }, &Params::scan(heads, d, runs), &[&k, &v, &b, &a, &s]).unwrap();
    }
    gpu.download(&s).unwrap()
}

#[test]
fn chunked_scan_equals_the_token_by_token_recurrence() {
    let mut rng = Rng::new(17);
    for &(heads, d, tokens, tiny) in
        &[(1, 16, 0, false), (2, 16, 1, false), (3, 16, 130, false), (4, 64, 200, false), (12, 128, 70, false), (2, 16, 100, true)]
    {
        let c = caches(&mut rng, tokens.max(1), heads, d, tiny);
        let s0 = rng.normals(heads * d * d, 1.0);
        let got = gpu_scan(&c, heads, d, &s0, &[vec![0..tokens]]);
        let slots: Vec<usize> = (0..tokens).collect();
        let want = reference_b3(&c, heads, d, &s0, &slots);
        // Each element is a decayed sum of ≤ T products with |k̂|,|β| ≤ 1: f32 rounding
        // stays near 1e-6 relative; the weights are exact products, not logs.
        assert_close(&format!("scan H={heads} d={d} T={tokens}"), &got, &want, 1e-5, 1e-5);
    }
}

#[test]
fn chunk_boundaries_and_ring_runs_do_not_change_the_state() {
    let mut rng = Rng::new(18);
    let (heads, d, tokens) = (3, 16, 150);
    let c = caches(&mut rng, tokens, heads, d, false);
    let s0 = vec![0.0; heads * d * d];
    let whole = gpu_scan(&c, heads, d, &s0, &[vec![0..tokens]]);
    let pieces = gpu_scan(&c, heads, d, &s0, &[vec![0..37], vec![37..100], vec![100..101], vec![], vec![101..150]]);
    // The same tokens as two runs of a ring: 0..64 then 64..150 in one call.
    let ring = gpu_scan(&c, heads, d, &s0, &[vec![0..64, 64..150]]);
    assert_close("pieces", &pieces, &whole, 1e-5, 1e-5);
    assert_close("ring", &ring, &whole, 1e-6, 1e-6);
    // A run order that differs from slot order: tokens 100..150 first, then 0..100.
    let wrapped = gpu_scan(&c, heads, d, &s0, &[vec![100..150, 0..100]]);
    let order: Vec<usize> = (100..150).chain(0..100).collect();
    let want = reference_b3(&c, heads, d, &s0, &order);
    assert_close("wrapped", &wrapped, &want, 1e-5, 1e-5);
}

/// How the gates and keys of a delta-rule case are drawn.
#[derive(Clone, Copy, Debug)]
enum Draw {
    /// β, a uniform in (0, 1), random unit keys.
    Random,
    /// β ≈ 1e-4: almost nothing is written.
    BetaNearZero,
    /// β ≈ 1 − 1e-4: each token nearly replaces what S held for its key.
    BetaNearOne,
    /// a ≈ 1e-6 and some a = 0 exactly (exp underflow): S forgets at every token.
    DecayNearZero,
    /// a ≈ 1 − 1e-6: no forgetting.
    DecayNearOne,
    /// Every token of a head writes one of three keys, β near 1.
    RepeatedKeys,
    /// Keys are basis vectors e_{t mod d}: writes never interfere.
    OrthogonalKeys,
}

fn delta_caches(rng: &mut Rng, slots: usize, heads: usize, d: usize, draw: Draw) -> Caches {
    let n = slots * heads;
    let mut khat = rng.normals(n * d, 1.0);
    match draw {
        Draw::RepeatedKeys => {
            let keys = rng.normals(3 * d, 1.0);
            for (r, row) in khat.chunks_mut(d).enumerate() {
                row.copy_from_slice(&keys[(rng.range(0, 3) + r % 2) % 3 * d..][..d]);
            }
        }
        Draw::OrthogonalKeys => {
            for (r, row) in khat.chunks_mut(d).enumerate() {
                row.iter_mut().enumerate().for_each(|(j, x)| *x = if j == (r / heads) % d { 1.0 } else { 0.0 });
            }
        }
        _ => {}
    }
    unit_rows(&mut khat, d);
    let mut u = |lo: f64, hi: f64| (lo + (hi - lo) * rng.uniform()) as f32;
    let (beta, decay): (Vec<f32>, Vec<f32>) = (0..n)
        .map(|i| match draw {
            Draw::Random | Draw::OrthogonalKeys => (u(0.0, 1.0), u(0.0, 1.0)),
            Draw::BetaNearZero => (u(0.0, 1e-4), u(0.5, 1.0)),
            Draw::BetaNearOne | Draw::RepeatedKeys => (u(1.0 - 1e-4, 1.0), u(0.5, 1.0)),
            Draw::DecayNearZero => (u(0.0, 1.0), if i % 7 == 0 { 0.0 } else { u(0.0, 1e-6) }),
            Draw::DecayNearOne => (u(0.0, 1.0), u(1.0 - 1e-6, 1.0)),
        })
        .unzip();
    Caches { khat, v: rng.normals(n * d, 1.0), beta, decay }
}

/// How a delta-rule scan runs on the device.
#[derive(Clone, Copy, Debug)]
enum How {
    Step,
    Chunked(u32),
}

/// Every way this adapter can run the delta rule: the step kernel and each block
/// length whose workgroup memory fits.
fn hows(gpu: &Gpu) -> Vec<How> {
    let mut v = vec![How::Step];
    for c in [16, 32, 64] {
        if DeltaScan::prepare_bytes(c) <= gpu.caps.workgroup_storage as usize {
            v.push(How::Chunked(c));
        }
    }
    v
}

fn gpu_delta(how: How, c: &Caches, heads: usize, d: usize, s0: &[f32], calls: &[Vec<Range<usize>>]) -> Vec<f32> {
    gpu_delta_as(how, c, heads, d, s0, calls, false)
}

fn gpu_delta_as(how: How, c: &Caches, heads: usize, d: usize, s0: &[f32], calls: &[Vec<Range<usize>>], f16: bool) -> Vec<f32> {
    let gpu = gpu();
    let (b, a, s) = (up(gpu, "beta", &c.beta), up(gpu, "decay", &c.decay), up(gpu, "state", s0));
    for runs in calls {
        let (k, v) = up_call(gpu, c, heads * d, runs, f16);
        let p = Params::scan(heads, d, runs);
        match how {
            How::Step => gpu.run(&Ssm::DeltaStep { f16 }, &p, &[&k, &v, &b, &a, &s]).unwrap(),
            How::Chunked(chunk) => {
                let t = (p.tokens as usize).max(1);
                let w = gpu.empty("w", &[t * heads * d], DType::F32).unwrap();
                let u = gpu.empty("u", &[t * heads * d], DType::F32).unwrap();
                let g = gpu.empty("g", &[t * heads], DType::F32).unwrap();
                gpu.run(&Ssm::DeltaPrepare { chunk, f16 }, &p, &[&k, &v, &b, &a, &w, &u, &g]).unwrap();
                gpu.run(&Ssm::DeltaUpdate { chunk }, &p, &[&k, &w, &u, &g, &s]).unwrap();
            }
        }
    }
    gpu.download(&s).unwrap()
}

fn reference(c: &Caches, heads: usize, d: usize, s0: &[f32], order: &[usize]) -> Vec<f32> {
    let mut want: Vec<f64> = s0.iter().map(|&x| x as f64).collect();
    let khat = khat_rows(c, heads * d, order.iter().copied());
    reference_delta(&Params::scan(heads, d, &[]), order, &khat, &c.v, &c.beta, &c.decay, &mut want);
    want.iter().map(|&x| x as f32).collect()
}

#[test]
fn delta_rule_chunked_and_token_by_token_equal_the_f64_rule() {
    let gpu = gpu();
    let hows = hows(gpu);
    println!("delta rule on this adapter: {hows:?}, sessions use {:?}", DeltaScan::for_device(&gpu.caps));
    let mut rng = Rng::new(25);
    // Token counts around every block length (1, C−1, C, C+1 for C = 16, 32, 64),
    // not multiples of any, and thousands; head dims 16..128; several heads.
    let cases: &[(usize, usize, usize, Draw)] = &[
        (1, 16, 0, Draw::Random),
        (2, 16, 1, Draw::Random),
        (3, 16, 15, Draw::Random),
        (2, 32, 16, Draw::Random),
        (2, 16, 17, Draw::Random),
        (2, 16, 31, Draw::RepeatedKeys),
        (1, 16, 33, Draw::OrthogonalKeys),
        (2, 64, 63, Draw::BetaNearOne),
        (4, 16, 64, Draw::BetaNearZero),
        (2, 32, 65, Draw::DecayNearZero),
        (3, 16, 130, Draw::DecayNearOne),
        (12, 128, 70, Draw::Random),
        (2, 128, 97, Draw::RepeatedKeys),
        (2, 16, 3001, Draw::Random),
        (1, 64, 2000, Draw::BetaNearOne),
        // A full-size chunk's evictions (3 frames of 30×52 tokens) at Wan's head dim:
        // within lavapipe's loop budget (see ssm_scan.wgsl).
        (1, 128, 4680, Draw::Random),
    ];
    let mut worst = 0f64;
    for &(heads, d, tokens, draw) in cases {
        let c = delta_caches(&mut rng, tokens.max(1), heads, d, draw);
        let s0 = rng.normals(heads * d * d, 0.5);
        let order: Vec<usize> = (0..tokens).collect();
        let want = reference(&c, heads, d, &s0, &order);
        let step = gpu_delta(How::Step, &c, heads, d, &s0, &[vec![0..tokens]]);
        for &how in &hows {
            let got = gpu_delta(how, &c, heads, d, &s0, &[vec![0..tokens]]);
            let what = format!("{how:?} H={heads} d={d} T={tokens} {draw:?}");
            // S is a contraction of its inputs (‖I − βk̂k̂ᵀ‖ ≤ 1, a ≤ 1), so f32 rounding
            // does not build up with T: each of ~d-term dots and ≤ 64-term solves rounds
            // at ~1e-7 relative to O(1) values; lavapipe shows ≤ 1e-6, 2e-5 leaves room for other adapters.
            assert_close(&what, &got, &want, 2e-5, 2e-5);
            assert_close(&format!("{what} vs step"), &got, &step, 2e-5, 2e-5);
            worst = worst.max(got.iter().zip(&want).map(|(g, w)| (g - w).abs() as f64).fold(0.0, f64::max));
        }
    }
    println!("delta rule: worst |err| vs f64 {worst:.2e}");
}

#[test]
fn delta_rule_state_continues_across_calls_and_ring_runs() {
    let gpu = gpu();
    let mut rng = Rng::new(26);
    let (heads, d, tokens) = (3, 32, 150);
    let c = delta_caches(&mut rng, tokens, heads, d, Draw::Random);
    let s0 = vec![0.0; heads * d * d];
    let order: Vec<usize> = (0..tokens).collect();
    let whole = reference(&c, heads, d, &s0, &order);
    // Wrapped: the ring's older run 100..150 first.
    let wrapped: Vec<usize> = (100..150).chain(0..100).collect();
    let want_wrapped = reference(&c, heads, d, &s0, &wrapped);
    for how in hows(gpu) {
        let pieces = gpu_delta(how, &c, heads, d, &s0, &[vec![0..37], vec![37..100], vec![100..101], vec![], vec![101..150]]);
        assert_close(&format!("{how:?} pieces"), &pieces, &whole, 2e-5, 2e-5);
        let ring = gpu_delta(how, &c, heads, d, &s0, &[vec![0..64, 64..150]]);
        assert_close(&format!("{how:?} ring"), &ring, &whole, 2e-5, 2e-5);
        let got = gpu_delta(how, &c, heads, d, &s0, &[vec![100..150, 0..100]]);
        assert_close(&format!("{how:?} wrapped"), &got, &want_wrapped, 2e-5, 2e-5);
    }
}

#[test]
fn delta_rule_with_zero_beta_writes_nothing() {
    let mut rng = Rng::new(27);
    let (heads, d, tokens) = (2, 16, 80);
    let mut c = delta_caches(&mut rng, tokens, heads, d, Draw::Random);
    c.beta.iter_mut().for_each(|b| *b = 0.0);
    c.decay.iter_mut().for_each(|a| *a = 1.0);
    let s0 = rng.normals(heads * d * d, 1.0);
    for how in hows(gpu()) {
        assert_eq!(gpu_delta(how, &c, heads, d, &s0, &[vec![0..tokens]]), s0, "{how:?}");
    }
}

#[test]
fn gates_match_reference_for_both_forms() {
    let gpu = gpu();
    let mut rng = Rng::new(19);
    let (tokens, heads) = (37, 4);
    let a_log = rng.normals(heads, 1.0);
    for router in [true, false] {
        let groups = if router { 3 } else { 2 };
        let raw: Vec<f32> = rng.normals(tokens * groups * heads, 4.0);
        let outs: Vec<_> = (0..groups).map(|_| gpu.empty("gate", &[tokens * heads], DType::F32).unwrap()).collect();
        let (traw, talog) = (up(gpu, "raw", &raw), up(gpu, "A_log", &a_log));
        let mut args = vec![&traw, &talog];
        args.extend(&outs);
        gpu.run(&Ssm::Gates { router }, &Params::tokens(tokens, heads, 0), &args).unwrap();
        let want = reference_gates(tokens, heads, &raw, &a_log, router);
        for (name, (t, w)) in ["beta", "decay", "gate"].iter().zip(outs.iter().zip(&want)) {
            assert_close(&format!("{name} router={router}"), &gpu.download(t).unwrap(), w, 1e-6, 1e-5);
        }
    }
}

/// Both forms, both variants (the GPU's tiled one and the CPU adapters' direct one),
/// head dims below, on and past the 32-column tile and the 64-row block.
#[test]
fn read_matches_reference_for_both_forms() {
    let gpu = gpu();
    let mut rng = Rng::new(20);
    for &(frames, frame_rows, heads, d, tiled) in
        &[(3, 5, 4, 16, false), (3, 5, 4, 16, true), (2, 3, 2, 128, false), (2, 3, 2, 128, true), (1, 7, 3, 48, true), (1, 2, 1, 96, true)]
    {
        let tokens = frames * frame_rows;
        let width = heads * d;
        let y = rng.normals(tokens * width, 1.0);
        let s = rng.normals(heads * d * d, 1.0);
        let q = rng.normals(tokens * width, 1.0);
        let o = gpu.empty("o", &[y.len()], DType::F32).unwrap();
        // B.3: y + g ⊙ S q̂ with g [T, H].
        let g: Vec<f32> = (0..tokens * heads).map(|_| rng.uniform() as f32).collect();
        let p = Params::tokens(tokens, heads, d);
        gpu.run(&Ssm::Read { delta: false, tiled }, &p, &[&up(gpu, "y", &y), &up(gpu, "S", &s), &up(gpu, "q", &q), &up(gpu, "g", &g), &o])
            .unwrap();
        // d-term f32 dots of O(1) values: 1e-5.
        assert_close(&format!("read d={d}"), &gpu.download(&o).unwrap(), &reference_read(&p, &y, &s, &q, &g), 1e-5, 1e-5);

        // B.6, the gate slot 2 of a [F, 6D] modulation; one frame's S is zero so that
        // r = 0 reads 0 (RMSNorm of zero with eps).
        let gate = rng.normals(tokens * width, 1.0);
        let consts = rng.normals(d + 2 * width, 1.0);
        let ln_rho: Vec<f32> = (0..frames).map(|f| ((f as f32 + 1.0) / 12.0).min(1.0).ln()).collect();
        let modulation = rng.normals(frames * 6 * width, 1.0);
        let p = Params::read_delta(tokens, heads, d, frame_rows, 6 * width, 2 * width, 1e-6);
        let args = [&y, &s, &q, &gate, &consts, &ln_rho, &modulation].map(|v| up(gpu, "in", v));
        let mut refs: Vec<&Tensor> = args.iter().collect();
        refs.push(&o);
        gpu.run(&Ssm::Read { delta: true, tiled }, &p, &refs).unwrap();
        let inputs = DeltaReadInputs { gate: &gate, consts: &consts, ln_rho: &ln_rho, modulation: &modulation };
        let want = reference_read_delta(&p, &y, &s, &q, &inputs);
        // RMSNorm divides by an O(√d) norm computed in f32: 1e-5 relative as above.
        assert_close(&format!("read_delta d={d}"), &gpu.download(&o).unwrap(), &want, 1e-5, 1e-5);
        let zero = vec![0.0; s.len()];
        let args = [&y, &zero, &q, &gate, &consts, &ln_rho, &modulation].map(|v| up(gpu, "in", v));
        let mut refs: Vec<&Tensor> = args.iter().collect();
        refs.push(&o);
        gpu.run(&Ssm::Read { delta: true, tiled }, &p, &refs).unwrap();
        assert_eq!(gpu.download(&o).unwrap(), y, "S = 0 must leave y exactly (Swish(0) = 0)");
    }
}

/// The read runs a workgroup per (token, head): at full size that is 4680 × 12 groups, and
/// any larger call folds the grid into y. 33,000 tokens × 2 heads = 66,000 workgroups,
/// past 65,535, so every output below depends on the index rebuilt from the folded grid
/// (the old fixed-stride fold left outputs unwritten).
#[test]
fn read_folds_grids_past_65535_workgroups() {
    let gpu = gpu();
    let mut rng = Rng::new(21);
    let (tokens, heads, d) = (33_000, 2, 16);
    let p = Params::tokens(tokens, heads, d);
    assert!(Ssm::read_for(&gpu.caps, false).workgroups(&p)[1] > 1, "the grid must fold");
    let y = rng.normals(tokens * heads * d, 1.0);
    let s = rng.normals(heads * d * d, 0.25);
    let q = rng.normals(tokens * heads * d, 1.0);
    let g: Vec<f32> = (0..tokens * heads).map(|_| rng.uniform() as f32).collect();
    let o = gpu.empty("o", &[y.len()], DType::F32).unwrap();
    for tiled in [false, true] {
        let args = [&up(gpu, "y", &y), &up(gpu, "S", &s), &up(gpu, "q", &q), &up(gpu, "g", &g), &o];
        gpu.run(&Ssm::Read { delta: false, tiled }, &p, &args).unwrap();
        let want = reference_read(&p, &y, &s, &q, &g);
        assert_close(&format!("read past 65535 workgroups, tiled {tiled}"), &gpu.download(&o).unwrap(), &want, 1e-5, 1e-5);
    }
}

#[test]
fn scans_read_f16_caches_as_the_f32_ones_of_their_rounded_values() {
    // An f16 KV cache holds v rounded to f16 (2⁻¹¹ relative); the scans widen it
    // exactly, so they must equal the f64 rules on the rounded cache to f32 rounding.
    // (What the rounding itself does to a model is the parity bundles' part.)
    let gpu = gpu();
    if !gpu.caps.f16 {
        eprintln!("f16 caches: skipped, this adapter has no shader-f16 (they are never chosen there)");
        return;
    }
    let mut rng = Rng::new(29);
    let round = |x: &[f32]| x.iter().map(|&v| DType::F16.round(v)).collect::<Vec<f32>>();
    for &(heads, d, tokens, draw) in &[(2, 16, 17, Draw::Random), (3, 32, 130, Draw::RepeatedKeys), (12, 128, 70, Draw::BetaNearOne)] {
        let c = delta_caches(&mut rng, tokens, heads, d, draw);
        let rounded = Caches { khat: c.khat.clone(), v: round(&c.v), beta: c.beta.clone(), decay: c.decay.clone() };
        let s0 = rng.normals(heads * d * d, 0.5);
        let order: Vec<usize> = (0..tokens).collect();
        let calls = [vec![0..tokens / 3], vec![tokens / 3..tokens]];
        let want = reference(&rounded, heads, d, &s0, &order);
        for how in hows(gpu) {
            let got = gpu_delta_as(how, &c, heads, d, &s0, &calls, true);
            assert_close(&format!("f16 caches {how:?} H={heads} d={d} T={tokens} {draw:?}"), &got, &want, 2e-5, 2e-5);
        }
        let want = reference_b3(&rounded, heads, d, &s0, &order);
        let got = gpu_scan_as(&c, heads, d, &s0, &calls, true);
        assert_close(&format!("f16 caches B.3 scan H={heads} d={d} T={tokens}"), &got, &want, 1e-5, 1e-5);
    }
    // Each variant checks what it is bound to: k̂ f32, v of its cache dtype.
    let ok = [(DType::F32, 64), (DType::F16, 64), (DType::F32, 4), (DType::F32, 4), (DType::F32, 256)];
    let p = Params::scan(1, 16, &[]);
    Ssm::DeltaStep { f16: true }.check(&p, &ok).unwrap();
    assert!(Ssm::DeltaStep { f16: false }.check(&p, &ok).is_err());
    assert!(Ssm::Scan { f16: true }.check(&p, &[(DType::F32, 64); 5]).is_err());
    assert!(Ssm::DeltaPrepare { chunk: 16, f16: true }.check(&p, &[(DType::F16, 64); 7]).is_err(), "an f16 k̂");
}
