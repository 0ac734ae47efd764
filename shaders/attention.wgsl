// Softmax attention with online (flash-style) normalisation, f32 throughout.
// Each invocation owns one (query, head): its query and output accumulator live in
// registers, and keys stream once through a running max / running sum, so no
// score matrix is ever stored. Keys are the rows listed in `ranges` ([start, end)
// pairs: sink slots plus the live window of a ring-buffer cache, or the valid text
// tokens); a list may be given per block of `q_block` queries for causal use.
// Neighbouring invocations share a head and read the same keys, which keeps the
// CPU caches of software adapters warm. HD is the head dim rounded up to 4.

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
// Additive score bias [heads, tq, tk] (T5's relative positions).
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> o: array<f32>;
#else
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
#endif

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let qi = gid.x;
    let h = gid.y;
    if qi >= p.tq {
        return;
    }
    var qv: array<f32, HD>;
    var acc: array<f32, HD>;
    let qb = p.q_off + qi * p.q_row + h * p.d;
    for (var c = 0u; c < p.d; c++) {
        qv[c] = q[qb + c] * p.scale;
    }
    var m = -3.0e38;
    var l = 0.0;
    let list = (qi / p.q_block) * p.n_ranges;
    for (var r = 0u; r < p.n_ranges; r++) {
        let span = ranges[list + r];
        for (var j = span.x; j < span.y; j++) {
            let kb = p.k_off + j * p.k_row + h * p.d;
            var s = 0.0;
            for (var c = 0u; c < p.d; c++) {
                s = fma(qv[c], k[kb + c], s);
            }
#ifdef BIAS
            s += bias[(h * p.tq + qi) * p.tk + j];
#endif
            let m_new = max(m, s);
            let correction = exp(m - m_new);
            let w = exp(s - m_new);
            l = l * correction + w;
            let vb = p.v_off + j * p.v_row + h * p.d;
            for (var c = 0u; c < p.d; c++) {
                acc[c] = fma(acc[c], correction, w * v[vb + c]);
            }
            m = m_new;
        }
    }
    // A query with no keys (empty ranges) outputs zeros rather than NaN.
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let ob = p.o_off + qi * p.o_row + h * p.d;
    for (var c = 0u; c < p.d; c++) {
        o[ob + c] = acc[c] * inv;
    }
}
