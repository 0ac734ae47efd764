#ifdef F16
enable f16;
#endif
// VideoSSM's global memory, both forms of MEMORY.md (B.3 gated linear, B.6 gated
// delta), in one file:
//
// SCAN   (B.3) folds T evicted tokens into the per-head state S [H, d, d] in token
//        order, S ← a_t·S + β_t·v_t k̂_tᵀ, in the chunked (SSD) form: per sub-chunk of
//        LC tokens, ΔS = Σ_t β_t (Π_{s>t} a_s) v_t k̂_tᵀ is a small matmul whose decay
//        weights are computed once per workgroup, then S ← (Π a)·S + ΔS. Each
//        invocation owns one state element, so the pass across sub-chunks is a
//        register update.
// DELTA_STEP (B.6) the gated delta rule token by token, u = β(v − a·S k̂),
//        S ← a·S + u k̂ᵀ: the reference and fallback. A row i of S (one value
//        channel) only ever sees its own v_i, so one workgroup owns one row, four
//        elements an invocation, and only the dot S_i·k̂ is shared (one workgroup sum).
// DELTA_PREPARE + DELTA_UPDATE (B.6) the same rule in the chunked WY/UT form: per
//        block of C tokens, PREPARE solves (I + A) with A_ij = β_i e^{g_i−g_j} k̂_iᵀk̂_j
//        by forward substitution in workgroup memory (blocks in parallel) and writes
//        W = (I+A)⁻¹ diag(βe^g) K, Ũ = (I+A)⁻¹ diag(β) V and g; UPDATE walks the
//        blocks in order per row of S: u = Ũ − W s, s ← e^{g_C} s + Σ_t u_t e^{g_C−g_t} k̂_t.
//        g are log-decay prefix sums from the block start; only differences g_i − g_j
//        with j ≤ i are exponentiated, so nothing overflows and strong decay gives
//        0, never 0/0.
// Tokens of every scan come from two slot runs of a ring cache (`slot`): v, β and a
// are read at their slots, k̂ by position in the call (a session derives k̂ of the
// evicted tokens from their cached keys into a scratch, in token order, instead of
// caching it for the whole window). The v cache is f32, or f16 (CACHE) in a session
// with an f16 KV cache: read as f32; k̂ is f32.
// Loop budgets: llvmpipe (lavapipe) silently leaves every loop of an invocation once
// 65535 iterations have run in total. DELTA_STEP runs one per token (its workgroup sum
// is unrolled); DELTA_UPDATE about d + 2C per block of C tokens at d = 128 (20k for
// a 4680-token chunk); DELTA_PREPARE ~3·C²·d/64 per block, independent of T.
// GATES  β = σ(r_β), a = exp(−exp(A_log)·softplus(r_α)) and, for B.3, the router
//        g = σ(r_g), from raw [T, GROUPS·H].
// READ   r = S_h q̂ per (token, head), one workgroup each (TILED, for GPUs: S_h read in
//        coalesced tiles through workgroup memory); B.3 adds y + g·r before the
//        output projection, B.6 (GATED_DELTA) RMS-normalises r over d, gates it by
//        the out_gate projection, applies Swish and the router γ and adds it, times
//        the block's modulation gate, to the residual stream after `o`.
#include "common.wgsl"

struct Params {
    heads: u32, d: u32, tokens: u32, count0: u32,
    start0: u32, start1: u32, row: u32, frame_rows: u32,
    mod_row: u32, mod_off: u32, eps: f32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// Largest head dim of the workgroup-per-row kernels: each of 64 invocations owns
// up to MAXD/64 elements of a row.
const MAXD: u32 = 256u;
const PER: u32 = 4u;

fn slot(t: u32) -> u32 {
    return select(p.start1 + t - p.count0, p.start0 + t, t < p.count0);
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

#ifdef SCAN
const LC: u32 = 64u;
@group(0) @binding(1) var<storage, read> khat: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<{{CACHE}}>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> decay: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<f32>;

var<workgroup> weight: array<f32, LC>;
var<workgroup> total: f32;

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
            acc = fma(weight[t] * f32(v[r + i]), khat[(c0 + t) * p.row + h * p.d + j], acc);
        }
        s = fma(total, s, acc);
        workgroupBarrier();
    }
    if live {
        state[h * dd + e] = s;
    }
}
#endif

#ifdef REDUCE
var<workgroup> red: array<f32, 64>;

// Σ over the workgroup's 64 invocations, unrolled: llvmpipe leaves every loop of an
// invocation once 65535 iterations have run in total, so per-token work stays loop-free.
fn sum64(lid: u32, x: f32) -> f32 {
    red[lid] = x;
    workgroupBarrier();
    if lid < 32u { red[lid] += red[lid + 32u]; }
    workgroupBarrier();
    if lid < 16u { red[lid] += red[lid + 16u]; }
    workgroupBarrier();
    if lid < 8u { red[lid] += red[lid + 8u]; }
    workgroupBarrier();
    if lid < 4u { red[lid] += red[lid + 4u]; }
    workgroupBarrier();
    if lid < 2u { red[lid] += red[lid + 2u]; }
    workgroupBarrier();
    let total = red[0] + red[1];
    workgroupBarrier();
    return total;
}
#endif

#ifdef DELTA_STEP
@group(0) @binding(1) var<storage, read> khat: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<{{CACHE}}>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> decay: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<f32>;

// Elements j..j+3 of k̂ at `base`, zero past d.
fn khat4(base: u32, j: u32) -> vec4<f32> {
    var x = vec4<f32>();
    if j < p.d { x.x = khat[base + j]; }
    if j + 1u < p.d { x.y = khat[base + j + 1u]; }
    if j + 2u < p.d { x.z = khat[base + j + 2u]; }
    if j + 3u < p.d { x.w = khat[base + j + 3u]; }
    return x;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // One workgroup per row (h, i) of S; invocation lid keeps elements 4·lid.. in a register.
    let h = wid.y;
    let i = wid.x;
    let sb = (h * p.d + i) * p.d;
    let j = 4u * lid;
    var s = vec4<f32>();
    if j < p.d { s.x = state[sb + j]; }
    if j + 1u < p.d { s.y = state[sb + j + 1u]; }
    if j + 2u < p.d { s.z = state[sb + j + 2u]; }
    if j + 3u < p.d { s.w = state[sb + j + 3u]; }
    for (var t = 0u; t < p.tokens; t++) {
        let sl = slot(t);
        let r = sl * p.row + h * p.d;
        let k = khat4(t * p.row + h * p.d, j);
        let a = decay[sl * p.heads + h];
        // MEMORY.md B.6: u = β(v − a·S k̂), S ← a·S + u k̂ᵀ.
        let u = beta[sl * p.heads + h] * (f32(v[r + i]) - a * sum64(lid, dot(s, k)));
        s = fma(vec4(a), s, u * k);
    }
    if j < p.d { state[sb + j] = s.x; }
    if j + 1u < p.d { state[sb + j + 1u] = s.y; }
    if j + 2u < p.d { state[sb + j + 2u] = s.z; }
    if j + 3u < p.d { state[sb + j + 3u] = s.w; }
}
#endif

#ifdef DELTA_PREPARE
const C: u32 = {{C}}u;
@group(0) @binding(1) var<storage, read> khat: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<{{CACHE}}>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> decay: array<f32>;
// W, Ũ [T, H·d] and g [T, H], by token position in this call.
@group(0) @binding(5) var<storage, read_write> w_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> u_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> g_out: array<f32>;

// A (strictly lower), overwritten row by row with T = (I + A)⁻¹ (unit diagonal implied).
var<workgroup> tri: array<f32, C * C>;
var<workgroup> arow: array<f32, C>;
var<workgroup> gs: array<f32, C>;
var<workgroup> bs: array<f32, C>;

// The smallest decay taken for ln: a cached a of exactly 0 (exp underflow) becomes
// e^−87, which is 0 to f32 after any multiplication, instead of ln 0 = −∞ and −∞ + ∞.
const TINY: f32 = 1.0e-38;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t0 = wid.x * C;
    let h = wid.y;
    if t0 >= p.tokens {
        return;
    }
    let len = min(C, p.tokens - t0);
    if lid == 0u {
        var g = 0.0;
        for (var i = 0u; i < len; i++) {
            let gi = slot(t0 + i) * p.heads + h;
            g += log(max(decay[gi], TINY));
            gs[i] = g;
            bs[i] = beta[gi];
            g_out[(t0 + i) * p.heads + h] = g;
        }
    }
    workgroupBarrier();
    // A_ij = β_i e^{g_i − g_j} k̂_iᵀ k̂_j for j < i.
    for (var e = lid; e < C * C; e += 64u) {
        let i = e / C;
        let j = e % C;
        var a = 0.0;
        if j < i && i < len {
            let ri = (t0 + i) * p.row + h * p.d;
            let rj = (t0 + j) * p.row + h * p.d;
            var dot = 0.0;
            for (var k = 0u; k < p.d; k++) {
                dot = fma(khat[ri + k], khat[rj + k], dot);
            }
            a = bs[i] * exp(gs[i] - gs[j]) * dot;
        }
        tri[e] = a;
    }
    workgroupBarrier();
    // Forward substitution, one column per invocation: T_ic = −(A_ic + Σ_{c<j<i} A_ij T_jc).
    for (var i = 1u; i < len; i++) {
        if lid < i {
            arow[lid] = tri[i * C + lid];
        }
        workgroupBarrier();
        if lid < i {
            var acc = arow[lid];
            for (var j = lid + 1u; j < i; j++) {
                acc = fma(arow[j], tri[j * C + lid], acc);
            }
            tri[i * C + lid] = -acc;
        }
        workgroupBarrier();
    }
    // W_i = Σ_{j≤i} T_ij β_j e^{g_j} k̂_j and Ũ_i = Σ_{j≤i} T_ij β_j v_j.
    for (var e = lid; e < len * p.d; e += 64u) {
        let i = e / p.d;
        let c = e % p.d;
        var w = 0.0;
        var u = 0.0;
        for (var j = 0u; j <= i; j++) {
            let tij = select(tri[i * C + j], 1.0, j == i) * bs[j];
            w = fma(tij * exp(gs[j]), khat[(t0 + j) * p.row + h * p.d + c], w);
            u = fma(tij, f32(v[slot(t0 + j) * p.row + h * p.d + c]), u);
        }
        let o = (t0 + i) * p.row + h * p.d + c;
        w_out[o] = w;
        u_out[o] = u;
    }
}
#endif

#ifdef DELTA_UPDATE
const C: u32 = {{C}}u;
@group(0) @binding(1) var<storage, read> khat: array<f32>;
@group(0) @binding(2) var<storage, read> w_in: array<f32>;
@group(0) @binding(3) var<storage, read> u_in: array<f32>;
@group(0) @binding(4) var<storage, read> g_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<f32>;

var<workgroup> srow: array<f32, MAXD>;
var<workgroup> coef: array<f32, C>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // One workgroup per row (h, i) of S, walking the blocks in token order.
    let h = wid.y;
    let i = wid.x;
    let sb = (h * p.d + i) * p.d;
    for (var m = 0u; m < PER; m++) {
        let j = lid + 64u * m;
        if j < p.d {
            srow[j] = state[sb + j];
        }
    }
    for (var t0 = 0u; t0 < p.tokens; t0 += C) {
        let len = min(C, p.tokens - t0);
        workgroupBarrier();
        // u_t = Ũ_t − W_t·s, weighted by e^{g_C − g_t} for the state update.
        if lid < len {
            let r = (t0 + lid) * p.row + h * p.d;
            var ws = 0.0;
            for (var j = 0u; j < p.d; j++) {
                ws = fma(w_in[r + j], srow[j], ws);
            }
            let g_last = g_in[(t0 + len - 1u) * p.heads + h];
            coef[lid] = (u_in[r + i] - ws) * exp(g_last - g_in[(t0 + lid) * p.heads + h]);
        }
        workgroupBarrier();
        let decay_all = exp(g_in[(t0 + len - 1u) * p.heads + h]);
        for (var m = 0u; m < PER; m++) {
            let j = lid + 64u * m;
            if j < p.d {
                var s = decay_all * srow[j];
                for (var t = 0u; t < len; t++) {
                    s = fma(coef[t], khat[(t0 + t) * p.row + h * p.d + j], s);
                }
                srow[j] = s;
            }
        }
    }
    for (var m = 0u; m < PER; m++) {
        let j = lid + 64u * m;
        if j < p.d {
            state[sb + j] = srow[j];
        }
    }
}
#endif

#ifdef GATES
@group(0) @binding(1) var<storage, read> raw: array<f32>;
@group(0) @binding(2) var<storage, read> a_log: array<f32>;
@group(0) @binding(3) var<storage, read_write> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> decay: array<f32>;
#ifdef ROUTER
@group(0) @binding(5) var<storage, read_write> gate: array<f32>;
const GROUPS: u32 = 3u;
#else
const GROUPS: u32 = 2u;
#endif

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = folded_index(gid, nwg, 64u);
    if e >= p.tokens * p.heads {
        return;
    }
    let t = e / p.heads;
    let h = e % p.heads;
    let r = t * GROUPS * p.heads;
    beta[e] = sigmoid(raw[r + h]);
    let x = raw[r + p.heads + h];
    // softplus without overflow: max(x, 0) + log(1 + e^{−|x|}).
    let softplus = max(x, 0.0) + log(1.0 + exp(-abs(x)));
    decay[e] = exp(-exp(a_log[h]) * softplus);
#ifdef ROUTER
    gate[e] = sigmoid(raw[r + 2u * p.heads + h]);
#endif
}
#endif

#ifdef READ
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> state: array<f32>;
@group(0) @binding(3) var<storage, read> qhat: array<f32>;
@group(0) @binding(4) var<storage, read> gate: array<f32>;
#ifdef GATED_DELTA
// [norm.weight (d) | router.weight (D) | router.bias (D)]
@group(0) @binding(5) var<storage, read> consts: array<f32>;
// ln ρ of each frame of the call, ρ = min(1, (f + 1)/T).
@group(0) @binding(6) var<storage, read> ln_rho: array<f32>;
@group(0) @binding(7) var<storage, read> modulation: array<f32>;
@group(0) @binding(8) var<storage, read_write> o: array<f32>;
#else
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
#endif

var<workgroup> q: array<f32, MAXD>;
#ifdef TILED
// A 64-row × 32-column tile of S_h, rows padded to 33 so that invocation i reading
// its row walks distinct banks.
const TC: u32 = 32u;
var<workgroup> tile: array<f32, 64u * (TC + 1u)>;
#endif

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // One workgroup per (token, head); folded grids rebuild the flat index.
    let w = folded_index(wid, nwg, 1u);
    if w >= p.tokens * p.heads {
        return;
    }
    let t = w / p.heads;
    let h = w % p.heads;
    let width = p.heads * p.d;
    let qb = t * width + h * p.d;
    for (var m = 0u; m < PER; m++) {
        let j = lid + 64u * m;
        if j < p.d {
            q[j] = qhat[qb + j];
        }
    }
    workgroupBarrier();
#ifdef TILED
    // r_i = Σ_j S[h, i, j] q̂_j for the rows i = lid + 64m this invocation owns. S_h
    // comes through workgroup memory in 64 × 32 tiles loaded along its rows, so adjacent
    // invocations load adjacent addresses (a direct row walk would stride by d).
    var r: array<f32, PER>;
    var sq = 0.0;
    for (var m = 0u; m < PER; m++) {
        let rb = 64u * m;
        var acc = 0.0;
        if rb < p.d {
            for (var c0 = 0u; c0 < p.d; c0 += TC) {
                for (var e = lid; e < 64u * TC; e += 64u) {
                    let row = e / TC;
                    let col = e % TC;
                    var x = 0.0;
                    if rb + row < p.d && c0 + col < p.d {
                        x = state[(h * p.d + rb + row) * p.d + c0 + col];
                    }
                    tile[row * (TC + 1u) + col] = x;
                }
                workgroupBarrier();
                for (var col = 0u; col < TC; col++) {
                    if c0 + col < p.d {
                        acc = fma(tile[lid * (TC + 1u) + col], q[c0 + col], acc);
                    }
                }
                workgroupBarrier();
            }
        }
        r[m] = acc;
        sq = fma(acc, acc, sq);
    }
#else
    // r_i = Σ_j S[h, i, j] q̂_j for the rows i = lid + 64m this invocation owns.
    var r: array<f32, PER>;
    var sq = 0.0;
    for (var m = 0u; m < PER; m++) {
        let i = lid + 64u * m;
        var acc = 0.0;
        if i < p.d {
            let sb = (h * p.d + i) * p.d;
            for (var j = 0u; j < p.d; j++) {
                acc = fma(state[sb + j], q[j], acc);
            }
        }
        r[m] = acc;
        sq = fma(acc, acc, sq);
    }
#endif
#ifdef GATED_DELTA
    // MEMORY.md B.6: n = r / sqrt(mean(r²) + eps) ⊙ w_norm; H = Swish(g ⊙ n);
    // out = y + m_gate ⊙ γ ⊙ H with γ = σ(w_r ln ρ + b_r).
    let inv = inverseSqrt(sum64(lid, sq) / f32(p.d) + p.eps);
    let f = t / p.frame_rows;
    for (var m = 0u; m < PER; m++) {
        let i = lid + 64u * m;
        if i < p.d {
            let c = h * p.d + i;
            let e = t * width + c;
            let z = gate[e] * r[m] * inv * consts[i];
            let gamma = sigmoid(fma(consts[p.d + c], ln_rho[f], consts[p.d + width + c]));
            let mg = modulation[f * p.mod_row + p.mod_off + c];
            o[e] = fma(mg * gamma, silu(z), y[e]);
        }
    }
#else
    for (var m = 0u; m < PER; m++) {
        let i = lid + 64u * m;
        if i < p.d {
            let e = qb + i;
            o[e] = fma(gate[t * p.heads + h], r[m], y[e]);
        }
    }
#endif
}
#endif
