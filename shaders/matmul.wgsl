// Y[b, m, n] = epilogue(Σ_k X[b, m, k] · W[b, n, k] (+ bias[n])), f32 accumulation.
//
// Two tilings share the epilogue:
// - REGISTER (default): each invocation owns a TM×TN block of outputs in registers
//   and streams K once (TM·TN FMAs per TM+TN loads), with no workgroup memory. On
//   CPU-backed adapters (lavapipe) barriers cost more than the reuse they buy, so
//   this is what pays there; TM = TN = 1 is the naive one-thread-per-output baseline.
// - TILED: the classic GPU design. A 16×16 workgroup computes a 64×64 block; X and W
//   tiles of depth 16 are staged in workgroup memory (X with vec4 loads when rows are
//   16-byte aligned), each invocation accumulating 4×4 outputs in registers.
// W may be f32 or packed f16/bf16 (two per u32) so weights stay small without
// `shader-f16`. Every stride is a param, so views (column slices, per-head batches)
// need no copies.
#include "common.wgsl"

struct Params {
    m: u32, n: u32, k: u32, batch: u32,
    x_off: u32, x_row: u32, x_batch: u32,
    w_off: u32, w_batch: u32,
    y_off: u32, y_row: u32, y_batch: u32,
    r_off: u32, r_row: u32,
    g_off: u32, g_row: u32, rows_per_gate: u32,
    _pad0: u32, _pad1: u32, _pad2: u32,
}

const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const WG: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
#ifdef X_VEC4
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
#endif
#ifdef W_F32
@group(0) @binding(2) var<storage, read> w: array<f32>;
fn load_w(i: u32) -> f32 { return w[i]; }
#else
@group(0) @binding(2) var<storage, read> w: array<u32>;
#ifdef W_BF16
fn load_w(i: u32) -> f32 { return unpack_bf16(w[i >> 1u], (i & 1u) == 1u); }
#else
fn load_w(i: u32) -> f32 { return unpack_f16(w[i >> 1u], (i & 1u) == 1u); }
#endif
#endif
#ifdef BIAS
@group(0) @binding({{B_BIAS}}) var<storage, read> bias: array<f32>;
#endif
#ifdef RESIDUAL
@group(0) @binding({{B_RES}}) var<storage, read> res: array<f32>;
#endif
#ifdef GATED
@group(0) @binding({{B_GATE}}) var<storage, read> gate: array<f32>;
#endif
@group(0) @binding({{B_Y}}) var<storage, read_write> y: array<f32>;

fn store(b: u32, row: u32, col: u32, acc: f32) {
    var v = acc;
#ifdef BIAS
    v += bias[col];
#endif
#ifdef GELU
    v = gelu_tanh(v);
#endif
#ifdef SILU
    v = silu(v);
#endif
#ifdef GATED
    v *= gate[p.g_off + (row / p.rows_per_gate) * p.g_row + col];
#endif
#ifdef RESIDUAL
    v += res[p.r_off + row * p.r_row + col];
#endif
    y[p.y_off + b * p.y_batch + row * p.y_row + col] = v;
}

#ifdef TILED
const BM: u32 = 64u;
const BK: u32 = 16u;
var<workgroup> xs: array<array<f32, 16>, 64>;
var<workgroup> ws: array<array<f32, 16>, 64>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wid.z;
    let m_base = wid.y * BM;
    let n_base = wid.x * BM;
    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
#ifdef X_VEC4
        // 64 rows × 4 vec4 = 256 loads, one per invocation.
        let r = lid / 4u;
        let c = (lid % 4u) * 4u;
        let row = m_base + r;
        var xv = vec4<f32>(0.0);
        if row < p.m && k0 + c < p.k {
            xv = x4[(p.x_off + b * p.x_batch + row * p.x_row + k0 + c) / 4u];
        }
        xs[r][c] = xv.x;
        xs[r][c + 1u] = xv.y;
        xs[r][c + 2u] = xv.z;
        xs[r][c + 3u] = xv.w;
#else
        for (var e = 0u; e < 4u; e++) {
            let idx = lid + e * 256u;
            let r = idx / BK;
            let c = idx % BK;
            let row = m_base + r;
            var xv = 0.0;
            if row < p.m && k0 + c < p.k {
                xv = x[p.x_off + b * p.x_batch + row * p.x_row + k0 + c];
            }
            xs[r][c] = xv;
        }
#endif
        for (var e = 0u; e < 4u; e++) {
            let idx = lid + e * 256u;
            let r = idx / BK;
            let c = idx % BK;
            let col = n_base + r;
            var wv = 0.0;
            if col < p.n && k0 + c < p.k {
                wv = load_w(p.w_off + b * p.w_batch + col * p.k + k0 + c);
            }
            ws[r][c] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var av: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = xs[ty * 4u + i][kk];
            }
            for (var j = 0u; j < 4u; j++) {
                let bv = ws[tx * 4u + j][kk];
                for (var i = 0u; i < 4u; i++) {
                    acc[i][j] = fma(av[i], bv, acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            let row = m_base + ty * 4u + i;
            let col = n_base + tx * 4u + j;
            if row < p.m && col < p.n {
                store(b, row, col, acc[i][j]);
            }
        }
    }
}
#else
@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.z;
    let m0 = gid.y * TM;
    let n0 = gid.x * TN;
    if m0 >= p.m || n0 >= p.n {
        return;
    }
    var acc: array<array<f32, TN>, TM>;
    // Rows/cols past the edge re-read the last valid one and are dropped at the store,
    // so the inner loop has no branches.
    var xr: array<u32, TM>;
    var wr: array<u32, TN>;
    for (var i = 0u; i < TM; i++) {
        xr[i] = p.x_off + b * p.x_batch + min(m0 + i, p.m - 1u) * p.x_row;
    }
    for (var j = 0u; j < TN; j++) {
        wr[j] = p.w_off + b * p.w_batch + min(n0 + j, p.n - 1u) * p.k;
    }
    for (var kk = 0u; kk < p.k; kk++) {
        var xv: array<f32, TM>;
        for (var i = 0u; i < TM; i++) {
            xv[i] = x[xr[i] + kk];
        }
        for (var j = 0u; j < TN; j++) {
            let wv = load_w(wr[j] + kk);
            for (var i = 0u; i < TM; i++) {
                acc[i][j] = fma(xv[i], wv, acc[i][j]);
            }
        }
    }
    for (var i = 0u; i < TM; i++) {
        let row = m0 + i;
        if row >= p.m {
            break;
        }
        for (var j = 0u; j < TN; j++) {
            let col = n0 + j;
            if col >= p.n {
                break;
            }
            store(b, row, col, acc[i][j]);
        }
    }
}
#endif
