// Softmax attention with online (flash-style) normalisation, f32 throughout.
// Each invocation owns one (query, head): its query and output accumulator live in
// registers, and keys stream once through a running max / running sum, so no
// score matrix is ever stored. Keys are the rows listed in `ranges` ([start, end)
// pairs: sink slots plus the live window of a ring-buffer cache, or the valid text
// tokens); a list may be given per block of `q_block` queries for causal use.
// A workgroup is 64 queries of one head, and the key list is chosen per workgroup
// (so `q_block` is a multiple of 64): every key address is then uniform across the
// workgroup, which lets CPU adapters load each key once and broadcast it to their
// SIMD lanes instead of gathering. HD is the head dim, a compile-time constant so
// the per-channel loops unroll and the query and accumulator stay in registers.

struct Params {
    tq: u32, heads: u32, d: u32, n_ranges: u32,
    q_block: u32, scale: f32, q_off: u32, q_row: u32,
    k_off: u32, k_row: u32, v_off: u32, v_row: u32,
    o_off: u32, o_row: u32, tk: u32, _pad: u32,
}

const HD: u32 = {{HD}}u;

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
    var m = -3.0e38;
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
#ifdef BIAS
            s += bias[h * (p.tq + p.tk - 1u) + j + p.tq - 1u - qc];
#endif
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
