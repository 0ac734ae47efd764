#ifdef KV_F16
enable f16;
#endif
// Softmax attention with online (flash-style) normalisation: scores and sums in f32.
// Keys are the rows listed in `ranges` ([start, end) pairs: sink slots plus the live
// window of a ring-buffer cache, or the valid text tokens); a list may be given per
// block of `q_block` queries (a multiple of 64) for causal use. Every workgroup's
// queries lie in one block, so its key list, loop bounds and barriers are uniform.
// A query with no keys outputs zeros. Two schedules, picked by the host per adapter:
//
// PER-QUERY (CPU adapters): one invocation per (query, head), 64 queries a workgroup.
//   The query and its accumulator live in registers and keys stream once through a
//   running max / running sum. Every key address is uniform across the workgroup,
//   so CPU adapters load each key once and broadcast it to their SIMD lanes.
//
// TILED (GPUs, flash-attention 2): a workgroup owns BQ queries of one head. The
//   head dim is split over the S lanes that share a query (lane s holds the vec4
//   chunks s, s+S, … of q and of the output accumulator: ≤ 32 floats each, so
//   registers stay small at head dim 128 or 384). Key and value tiles of BK rows
//   (BK from the adapter's workgroup memory, see attention.rs) are staged in
//   workgroup memory, as f16 where the adapter has shader-f16 and the weights are
//   16-bit, loaded coalesced (consecutive invocations, consecutive words) and zero
//   past the range end. Keys are consumed R = STEP_KEYS at a time: R partial dot products
//   per lane, summed over the S lanes by subgroup shuffles (or through workgroup
//   memory), then one online-softmax update for the R scores (running max m, sum l;
//   the accumulator is rescaled once per step) and R value rows folded in. All groups
//   read the same key row at once and a group's S lanes read adjacent vec4s, so
//   tile reads are broadcasts without bank conflicts.
//   The per-step code is unrolled by the host (STEP): llvmpipe counts the iterations
//   of all loops of an invocation against one budget of 65535 and silently leaves
//   every loop once it is spent, so per tile only the loader (BK·HD/WG) and the step
//   loop (BK/R) iterate: at head dim 128, 40 iterations per 64 keys, ~100k keys.

struct Params {
    tq: u32, heads: u32, d: u32, n_ranges: u32,
    q_block: u32, scale: f32, q_off: u32, q_row: u32,
    k_off: u32, k_row: u32, v_off: u32, v_row: u32,
    o_off: u32, o_row: u32, tk: u32, _pad: u32,
}

const HD: u32 = {{HD}}u;
// Below every finite score, yet exp(NEG − NEG) stays finite (unlike −inf − −inf).
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> ranges: array<vec2<u32>>;
#ifdef BIAS
// T5's relative-position bias: per head a table of tq + tk − 1 values indexed by
// key minus query, j − i + tq − 1 (the host expands the buckets).
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> o: array<f32>;
#else
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
#endif

// What is added to the score of key j for query i of head h.
fn score_bias(h: u32, j: u32, i: u32) -> f32 {
#ifdef BIAS
    return bias[h * (p.tq + p.tk - 1u) + j + p.tq - 1u - i];
#else
    return 0.0;
#endif
}

#ifdef TILED
const S: u32 = {{LANES}}u;
const WG: u32 = {{WG}}u;
const BQ: u32 = WG / S;
const BK: u32 = {{BK}}u;
// vec4 chunks of a row, and of a lane's share of it.
const D4: u32 = HD / 4u;
const C4: u32 = D4 / S;
alias kv4 = vec4<{{KV}}>;
var<workgroup> kt: array<kv4, BK * D4>;
var<workgroup> vt: array<kv4, BK * D4>;
#ifdef WG_REDUCE
// Partial scores of one step, [R][WG], summed over the S lanes of each query.
var<workgroup> part: array<f32, {{STEP_KEYS}}u * WG>;
#endif

#ifdef KV_F16
// Saturating: a K or V beyond f16's range rounds to its largest value, not to inf.
fn to_kv(x: f32) -> f16 {
    return f16(clamp(x, -65504.0, 65504.0));
}
#else
fn to_kv(x: f32) -> f32 {
    return x;
}
#endif

fn key(j: u32, chunk: u32) -> vec4<f32> {
    return vec4<f32>(kt[j * D4 + chunk]);
}

fn value(j: u32, chunk: u32) -> vec4<f32> {
    return vec4<f32>(vt[j * D4 + chunk]);
}

// Rows j0 .. j0 + BK of head h into the tiles, zeros from row `end` on (a masked
// key then adds 0·0, never 0·NaN from stale memory).
fn stage(j0: u32, end: u32, h: u32, t: u32) {
    for (var e = 0u; e < (BK * HD + WG - 1u) / WG; e++) {
        let i = t + e * WG;
        let j = j0 + i / HD;
        let c = i % HD;
        if i < BK * HD {
            var kx = 0.0;
            var vx = 0.0;
            if j < end {
                kx = k[p.k_off + j * p.k_row + h * p.d + c];
                vx = v[p.v_off + j * p.v_row + h * p.d + c];
            }
            kt[i / 4u][c % 4u] = to_kv(kx);
            vt[i / 4u][c % 4u] = to_kv(vx);
        }
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
#ifdef SUBGROUPS
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(subgroup_size) sg_size: u32,
#endif
) {
#ifdef SUBGROUPS
    // The S lanes of a query are adjacent lanes of one subgroup (the host ensures
    // S ≤ the adapter's smallest subgroup), so shuffles by XOR < S stay among them.
    let t = sg_id * sg_size + sg_lane;
#else
    let t = lid;
#endif
    let lane = t % S;
    let qi = wid.x * BQ + t / S;
    let h = wid.y;
    // Queries past the end compute on the last one and do not store: no early return,
    // so barriers and shuffles stay in uniform control flow.
    let qc = min(qi, p.tq - 1u);
    var qv: array<vec4<f32>, C4>;
    var acc: array<vec4<f32>, C4>;
    let qb = p.q_off + qc * p.q_row + h * p.d;
    for (var i = 0u; i < C4; i++) {
        let c = qb + 4u * (lane + S * i);
        qv[i] = vec4<f32>(q[c], q[c + 1u], q[c + 2u], q[c + 3u]) * p.scale;
    }
    var m = NEG;
    var l = 0.0;
    let list = (wid.x * BQ / p.q_block) * p.n_ranges;
    for (var r = 0u; r < p.n_ranges; r++) {
        let span = ranges[list + r];
        for (var tile = span.x; tile < span.y; tile += BK) {
            // The previous tile is consumed before it is overwritten.
            workgroupBarrier();
            stage(tile, span.y, h, t);
            workgroupBarrier();
            let n = min(BK, span.y - tile);
            for (var jj = 0u; jj < n; jj += {{STEP_KEYS}}u) {
{{STEP}}
            }
        }
    }
    let inv = select(0.0, 1.0 / l, l > 0.0);
    if qi < p.tq {
        let ob = p.o_off + qi * p.o_row + h * p.d;
        for (var i = 0u; i < C4; i++) {
            let c = ob + 4u * (lane + S * i);
            let y = acc[i] * inv;
            o[c] = y.x;
            o[c + 1u] = y.y;
            o[c + 2u] = y.z;
            o[c + 3u] = y.w;
        }
    }
}
#else
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let qi = wid.x * 64u + lid;
    let h = wid.y;
    // Queries past the end compute on the last one and do not store: no early return,
    // so control flow stays uniform.
    let qc = min(qi, p.tq - 1u);
    var qv: array<f32, HD>;
    var acc: array<f32, HD>;
    let qb = p.q_off + qc * p.q_row + h * p.d;
    for (var c = 0u; c < HD; c++) {
        qv[c] = q[qb + c] * p.scale;
    }
    var m = NEG;
    var l = 0.0;
    let list = (wid.x * 64u / p.q_block) * p.n_ranges;
    for (var r = 0u; r < p.n_ranges; r++) {
        let span = ranges[list + r];
        for (var j = span.x; j < span.y; j++) {
            let kb = p.k_off + j * p.k_row + h * p.d;
            var s = 0.0;
            for (var c = 0u; c < HD; c++) {
                s = fma(qv[c], k[kb + c], s);
            }
            s += score_bias(h, j, qc);
            let m_new = max(m, s);
            let correction = exp(m - m_new);
            let w = exp(s - m_new);
            l = l * correction + w;
            let vb = p.v_off + j * p.v_row + h * p.d;
            for (var c = 0u; c < HD; c++) {
                acc[c] = fma(acc[c], correction, w * v[vb + c]);
            }
            m = m_new;
        }
    }
    // A query with no keys (empty ranges) outputs zeros rather than NaN.
    let inv = select(0.0, 1.0 / l, l > 0.0);
    if qi >= p.tq {
        return;
    }
    let ob = p.o_off + qi * p.o_row + h * p.d;
    for (var c = 0u; c < HD; c++) {
        o[ob + c] = acc[c] * inv;
    }
}
#endif
