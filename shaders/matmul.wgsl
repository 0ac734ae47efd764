// Y[b, m, n] = epilogue(Σ_k X[b, m, k] · W[b, k, n] (+ bias[n])), f32 accumulation.
//
// Weights are stored transposed, [in, out] (the loader does it once), so that
// neighbouring invocations read neighbouring addresses of W along n.
// Two tilings share the epilogue:
// - REGISTER (default): a workgroup of 8×8 invocations; invocation (lx, ly) owns TM
//   rows and TN columns spaced 8 apart (n = base + 8·j + lx), held in registers,
//   and streams K once with no workgroup memory. On CPU-backed adapters (lavapipe)
//   the 8 lanes of a SIMD batch then load W as one contiguous vector and X as one
//   broadcast, and barriers (which cost more than they save there) are avoided.
//   TM = TN = 1 is the naive one-thread-per-output baseline.
// - TILED: the classic GPU design. A 16×16 workgroup computes a 64×64 block; X and W
//   tiles of depth 16 are staged in workgroup memory (X with vec4 loads when rows are
//   16-byte aligned), each invocation accumulating 4×4 outputs in registers.
// W may be f32 or packed f16/bf16 (two per u32) so weights stay small without
// `shader-f16`. Every stride is a param, so views (column slices, row blocks,
// per-head batches) need no copies.
#include "common.wgsl"

struct Params {
    m: u32, n: u32, k: u32, batch: u32,
    x_off: u32, x_row: u32, x_batch: u32,
    w_off: u32, w_row: u32, w_batch: u32,
    y_off: u32, y_row: u32, y_batch: u32,
    r_off: u32, r_row: u32,
    g_off: u32, g_row: u32, rows_per_gate: u32,
    b_off: u32, gate_row0: u32,
}

const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;

@group(0) @binding(0) var<uniform> p: Params;
#ifdef X_VEC4
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
#endif
#include "weights.wgsl"
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
    v += bias[p.b_off + col];
#endif
#ifdef GELU
    v = gelu_tanh(v);
#endif
#ifdef SILU
    v = silu(v);
#endif
#ifdef GATED
    v *= gate[p.g_off + ((p.gate_row0 + row) / p.rows_per_gate) * p.g_row + col];
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
var<workgroup> ws: array<array<f32, 64>, 16>;

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
        // W^T rows are contiguous along n: consecutive invocations load consecutive words.
        for (var e = 0u; e < 4u; e++) {
            let idx = lid + e * 256u;
            let kr = idx / BM;
            let c = idx % BM;
            let col = n_base + c;
            var wv = 0.0;
            if col < p.n && k0 + kr < p.k {
                wv = load_w(p.w_off + b * p.w_batch + (k0 + kr) * p.w_row + col);
            }
            ws[kr][c] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var av: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = xs[ty * 4u + i][kk];
            }
            for (var j = 0u; j < 4u; j++) {
                let bv = ws[kk][tx + 16u * j];
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
            let col = n_base + tx + 16u * j;
            if row < p.m && col < p.n {
                store(b, row, col, acc[i][j]);
            }
        }
    }
}
#else
@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = wid.z;
    let m0 = (wid.y * 8u + lid.y) * TM;
    let n0 = wid.x * 8u * TN + lid.x;
    if m0 >= p.m {
        return;
    }
    var acc: array<array<f32, TN>, TM>;
    // Rows/cols past the edge re-read the last valid one and are dropped at the store,
    // so the inner loop has no branches.
    var xr: array<u32, TM>;
    var wc: array<u32, TN>;
    for (var i = 0u; i < TM; i++) {
        xr[i] = p.x_off + b * p.x_batch + min(m0 + i, p.m - 1u) * p.x_row;
    }
    for (var j = 0u; j < TN; j++) {
        wc[j] = p.w_off + b * p.w_batch + min(n0 + 8u * j, p.n - 1u);
    }
    // The TM×TN step is unrolled by the Rust side (TILE_STEP): llvmpipe counts the
    // iterations of all loops of an invocation against one budget of 65535 and silently
    // leaves every loop once it is spent, so the K loop must be the only one that runs long.
    for (var kk = 0u; kk < p.k; kk++) {
        let wk = kk * p.w_row;
{{TILE_STEP}}
    }
    for (var i = 0u; i < TM; i++) {
        let row = m0 + i;
        for (var j = 0u; j < TN; j++) {
            let col = n0 + 8u * j;
            if row < p.m && col < p.n {
                store(b, row, col, acc[i][j]);
            }
        }
    }
}
#endif
