// VideoSSM's global memory (MEMORY.md B.3), one file for its three kernels:
//
// SCAN  folds T evicted tokens into the per-head state S [H, d, d] in token order,
//       S ← a_t·S + β_t·v_t k̂_tᵀ, in the chunked (SSD) form: per sub-chunk of LC
//       tokens, ΔS = Σ_t β_t (Π_{s>t} a_s) v_t k̂_tᵀ is a small matmul whose decay
//       weights are computed once per workgroup, then S ← (Π a)·S + ΔS. Each
//       invocation owns one state element, so the pass across sub-chunks is a
//       register update. Tokens are read from two slot runs of a ring cache.
// GATES β = σ(r_β), a = exp(−exp(A_log)·softplus(r_α)), g = σ(r_g) from raw [T, 3H].
// READ  o[t, h, :] = y[t, h, :] + g[t, h] · S_h q̂[t, h, :].
#include "common.wgsl"

struct Params {
    heads: u32, d: u32, tokens: u32, count0: u32,
    start0: u32, start1: u32, row: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

#ifdef SCAN
const LC: u32 = 64u;
@group(0) @binding(1) var<storage, read> khat: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> decay: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<f32>;

var<workgroup> weight: array<f32, LC>;
var<workgroup> total: f32;

fn slot(t: u32) -> u32 {
    return select(p.start1 + t - p.count0, p.start0 + t, t < p.count0);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = gid.y;
    let e = gid.x;
    let dd = p.d * p.d;
    let live = e < dd;
    let i = e / p.d;
    let j = e % p.d;
    var s = 0.0;
    if live {
        s = state[h * dd + e];
    }
    for (var c0 = 0u; c0 < p.tokens; c0 += LC) {
        let len = min(LC, p.tokens - c0);
        if lid == 0u {
            // Suffix products from the end of the sub-chunk: weight[t] = β_t Π_{s>t} a_s.
            var run = 1.0;
            for (var t = len; t > 0u; t--) {
                let sl = slot(c0 + t - 1u) * p.heads + h;
                weight[t - 1u] = beta[sl] * run;
                run *= decay[sl];
            }
            total = run;
        }
        workgroupBarrier();
        var acc = 0.0;
        for (var t = 0u; t < len; t++) {
            let r = slot(c0 + t) * p.row + h * p.d;
            acc = fma(weight[t] * v[r + i], khat[r + j], acc);
        }
        s = fma(total, s, acc);
        workgroupBarrier();
    }
    if live {
        state[h * dd + e] = s;
    }
}
#endif

#ifdef GATES
@group(0) @binding(1) var<storage, read> raw: array<f32>;
@group(0) @binding(2) var<storage, read> a_log: array<f32>;
@group(0) @binding(3) var<storage, read_write> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> decay: array<f32>;
@group(0) @binding(5) var<storage, read_write> gate: array<f32>;

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    if e >= p.tokens * p.heads {
        return;
    }
    let t = e / p.heads;
    let h = e % p.heads;
    let r = t * 3u * p.heads;
    beta[e] = sigmoid(raw[r + h]);
    let x = raw[r + p.heads + h];
    // softplus without overflow: max(x, 0) + log(1 + e^{−|x|}).
    let softplus = max(x, 0.0) + log(1.0 + exp(-abs(x)));
    decay[e] = exp(-exp(a_log[h]) * softplus);
    gate[e] = sigmoid(raw[r + 2u * p.heads + h]);
}
#endif

#ifdef READ
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> state: array<f32>;
@group(0) @binding(3) var<storage, read> qhat: array<f32>;
@group(0) @binding(4) var<storage, read> gate: array<f32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = folded_index(gid, nwg, 64u);
    let width = p.heads * p.d;
    if e >= p.tokens * width {
        return;
    }
    let t = e / width;
    let h = (e % width) / p.d;
    let i = e % p.d;
    let sb = (h * p.d + i) * p.d;
    let qb = t * width + h * p.d;
    var acc = 0.0;
    for (var j = 0u; j < p.d; j++) {
        acc = fma(state[sb + j], qhat[qb + j], acc);
    }
    o[e] = fma(gate[t * p.heads + h], acc, y[e]);
}
#endif
