//! The memory kernels against f64 references: the chunked scan equals the
//! token-by-token recurrence, also when the same tokens are folded across
//! arbitrary chunk boundaries and when they sit in two runs of a ring.
use runtime::kernels::ssm_scan::{reference_gates, reference_read, reference_scan, Params, Ssm};
use runtime::DType;
use std::ops::Range;
use videossm_suite::{assert_close, gpu, Rng};

struct Caches {
    khat: Vec<f32>,
    v: Vec<f32>,
    beta: Vec<f32>,
    decay: Vec<f32>,
}

fn caches(rng: &mut Rng, slots: usize, heads: usize, d: usize, tiny_decay: bool) -> Caches {
    let mut khat = rng.normals(slots * heads * d, 1.0);
    for row in khat.chunks_mut(d) {
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= n);
    }
    let decay = (0..slots * heads).map(|_| if tiny_decay { 1e-6 } else { 0.5 + 0.5 * rng.uniform() as f32 }).collect();
    let beta = (0..slots * heads).map(|_| rng.uniform() as f32).collect();
    Caches { khat, v: rng.normals(slots * heads * d, 1.0), beta, decay }
}

/// Folds `calls` (each a list of ≤ 2 slot runs) on the GPU into a state starting at `s0`.
fn gpu_scan(c: &Caches, heads: usize, d: usize, s0: &[f32], calls: &[Vec<Range<usize>>]) -> Vec<f32> {
    let gpu = gpu();
    let up = |n: &str, v: &[f32]| gpu.upload(n, &[v.len()], DType::F32, v).unwrap();
    let (k, v, b, a, s) = (up("khat", &c.khat), up("v", &c.v), up("beta", &c.beta), up("decay", &c.decay), up("state", s0));
    for runs in calls {
        gpu.run(&Ssm::Scan, &Params::scan(heads, d, runs), &[&k, &v, &b, &a, &s]).unwrap();
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
        let mut want: Vec<f64> = s0.iter().map(|&x| x as f64).collect();
        let slots: Vec<usize> = (0..tokens).collect();
        reference_scan(&Params::scan(heads, d, &[]), &slots, &c.khat, &c.v, &c.beta, &c.decay, &mut want);
        let want: Vec<f32> = want.iter().map(|&x| x as f32).collect();
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
    let mut want = vec![0f64; heads * d * d];
    let order: Vec<usize> = (100..150).chain(0..100).collect();
    reference_scan(&Params::scan(heads, d, &[]), &order, &c.khat, &c.v, &c.beta, &c.decay, &mut want);
    let want: Vec<f32> = want.iter().map(|&x| x as f32).collect();
    assert_close("wrapped", &wrapped, &want, 1e-5, 1e-5);
}

#[test]
fn gates_and_read_match_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(19);
    let (tokens, heads, d) = (37, 4, 16);
    let raw: Vec<f32> = rng.normals(tokens * 3 * heads, 4.0);
    let a_log = rng.normals(heads, 1.0);
    let up = |n: &str, v: &[f32]| gpu.upload(n, &[v.len()], DType::F32, v).unwrap();
    let (traw, talog) = (up("raw", &raw), up("A_log", &a_log));
    let outs: Vec<_> = (0..3).map(|_| gpu.empty("gate", &[tokens * heads], DType::F32).unwrap()).collect();
    gpu.run(&Ssm::Gates, &Params::tokens(tokens, heads, 0), &[&traw, &talog, &outs[0], &outs[1], &outs[2]]).unwrap();
    let want = reference_gates(tokens, heads, &raw, &a_log);
    for (name, (t, w)) in ["beta", "decay", "gate"].iter().zip(outs.iter().zip(&want)) {
        assert_close(name, &gpu.download(t).unwrap(), w, 1e-6, 1e-5);
    }
    let y = rng.normals(tokens * heads * d, 1.0);
    let s = rng.normals(heads * d * d, 1.0);
    let q = rng.normals(tokens * heads * d, 1.0);
    let g = want[2].clone();
    let o = gpu.empty("o", &[y.len()], DType::F32).unwrap();
    let p = Params::tokens(tokens, heads, d);
    gpu.run(&Ssm::Read, &p, &[&up("y", &y), &up("S", &s), &up("q", &q), &up("g", &g), &o]).unwrap();
    assert_close("read", &gpu.download(&o).unwrap(), &reference_read(&p, &y, &s, &q, &g), 1e-5, 1e-5);
}
