// Y[b, m, n] = epilogue(Σ_k X[b, m, k] · W[b, k, n] (+ bias[n])), f32 accumulation.
//
// Weights are stored transposed, [in, out] (the loader does it once), so that
// neighbouring invocations read neighbouring addresses of W along n.
// Three tilings share the epilogue (`store`):
// - REGISTER (default): a workgroup of 8×8 invocations; invocation (lx, ly) owns TM
//   rows and TN columns spaced 8 apart (n = base + 8·j + lx), held in registers,
//   and streams K once with no workgroup memory. On CPU-backed adapters (lavapipe)
//   the 8 lanes of a SIMD batch then load W as one contiguous vector and X as one
//   broadcast, and barriers (which cost more than they save there) are avoided.
//   TM = TN = 1 is the naive one-thread-per-output baseline.
// - TILED (GPUs): a workgroup of (BN/TN)×(BM/TM) = 256 invocations computes a BM×BN
//   block, each invocation TM×TN outputs in registers (8×8 of a 128×128 block, 4×4 of
//   64×64 for small products). X and W are staged BK deep in workgroup memory, X
//   transposed (xs[k][m/4]) so that both operands of the inner step are vec4 reads: an
//   invocation's rows are 4·(ty + i·BM/TM) + 0..3 and its columns 4·(tx + j·BN/TN) + 0..3,
//   so neighbouring invocations read neighbouring vec4s (no bank conflicts) and write
//   neighbouring columns of Y. Global loads are coalesced: X along k, W along n.
// - COOP (GPUs with matrix units, `wgpu_cooperative_matrix`): a 64×64 block, each of 4
//   subgroups a 32×32 region of S×S accumulator fragments (S = 16, or 8 on Metal), f16
//   operands staged BK = 32 deep in workgroup memory, f32 accumulation; every fragment
//   is stored to workgroup memory once at the end and put through `store`.
// Workgroup memory: TILED 4·BK·(BM + 4 + BN) bytes (16.25 KiB at 128×128×16, so 8 deep
// where only WebGPU's guaranteed 16 KiB is there), COOP at most 14.5 KiB.
// W may be f32 or packed f16/bf16 (two per u32) so weights stay small without
// `shader-f16`. Every stride is a param, so views (column slices, row blocks,
// per-head batches) need no copies.
#ifdef COOP
enable f16;
enable wgpu_cooperative_matrix;
#endif
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

#ifdef STAGED
// X[b, row, k..k+4], zeros past the edges (vec4 X needs k % 4 == 0, so a quad is all in
// or all out).
fn x_quad(b: u32, row: u32, k: u32) -> vec4<f32> {
    if row >= p.m || k >= p.k {
        return vec4<f32>(0.0);
    }
    let base = p.x_off + b * p.x_batch + row * p.x_row + k;
#ifdef X_VEC4
    return x4[base / 4u];
#else
    // Straight-line rather than a loop: llvmpipe's loop budget (see REGISTER's K loop).
    let last = base - k + p.k - 1u;
    let q = vec4<f32>(x[base], x[min(base + 1u, last)], x[min(base + 2u, last)], x[min(base + 3u, last)]);
    return select(vec4<f32>(0.0), q, vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.k));
#endif
}

// W[b, k, col], zero past the edges.
fn w_at(b: u32, k: u32, col: u32) -> f32 {
    if k >= p.k || col >= p.n {
        return 0.0;
    }
    return load_w(p.w_off + b * p.w_batch + k * p.w_row + col);
}
#endif

#ifdef TILED
const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
// Invocations along n and m, and in all.
const WX: u32 = BN / TN;
const WY: u32 = BM / TM;
const WG: u32 = WX * WY;
// xs[k][r] holds rows 4r..4r+3 of column k. The extra vec4 per k row skews the
// transposing stores (4 invocations per row write 4 different k rows) across banks.
var<workgroup> xs: array<array<vec4<f32>, BM / 4u + 1u>, BK>;
var<workgroup> ws: array<array<vec4<f32>, BN / 4u>, BK>;

// Y[b, row, col..col+4] = v through the epilogue, inside the edges.
fn store4(b: u32, row: u32, col: u32, v: vec4<f32>) {
    if row < p.m {
        for (var c = 0u; c < 4u; c++) {
            if col + c < p.n {
                store(b, row, col + c, v[c]);
            }
        }
    }
}

@compute @workgroup_size(WX, WY, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) l: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b = wid.z;
    let m_base = wid.y * BM;
    let n_base = wid.x * BN;
    let tx = l.x;
    let ty = l.y;
    // acc[i·TN/4 + j]: row i of the invocation's rows, columns 4j..4j+3 of its columns.
    var acc: array<vec4<f32>, TM * TN / 4u>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // BM×BK of X as quads along k (BK/4 invocations per row), stored transposed.
        for (var e = 0u; e < BM * BK / 4u / WG; e++) {
            let i = lid + e * WG;
            let r = i / (BK / 4u);
            let c = (i % (BK / 4u)) * 4u;
            let q = x_quad(b, m_base + r, k0 + c);
            xs[c][r / 4u][r % 4u] = q.x;
            xs[c + 1u][r / 4u][r % 4u] = q.y;
            xs[c + 2u][r / 4u][r % 4u] = q.z;
            xs[c + 3u][r / 4u][r % 4u] = q.w;
        }
        // BK×BN of W, consecutive invocations on consecutive columns.
        for (var e = 0u; e < BK * BN / WG; e++) {
            let i = lid + e * WG;
            let c = i % BN;
            ws[i / BN][c / 4u][c % 4u] = w_at(b, k0 + i / BN, n_base + c);
        }
        workgroupBarrier();
        // BK steps of TM/4 + TN/4 vec4 reads and TM·TN/4 vec4 FMAs, unrolled by the Rust
        // side (TILE_STEP): constant indices keep acc in registers, and the K loop stays
        // the only long one (llvmpipe's loop budget, see REGISTER).
{{TILE_STEP}}
        workgroupBarrier();
    }
{{TILE_STORE}}
}
#endif

#ifdef COOP
const S: u32 = {{S}}u;
const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 32u;
// Four subgroups of the largest size the adapter reports (at least 32). Smaller subgroups
// make more subgroups than regions: the extra ones repeat region 3 (cooperative operations
// must run in uniform control flow, so they cannot sit out) into a spare slot of cs.
const WG: u32 = 4u * {{SG}}u;
// Row strides in elements: rows 16-byte aligned (Vulkan's rule for cooperative loads) and
// 16 bytes past a multiple of 64, so the 8 rows of a fragment's load fall in different banks.
const XS: u32 = BK + 8u;
const WS: u32 = BN + 8u;
var<workgroup> xh: array<f16, BM * XS>;
var<workgroup> wh: array<f16, BK * WS>;
var<workgroup> cs: array<f32, 5u * S * S>;

// Rounds to f16 for the matrix units. The clamp makes values beyond f16's range (±65504)
// saturate instead of being indeterminate; activations and weights of the models stay far
// inside it, but a product of larger inputs is wrong here (VIDEOSSM_NO_COOPMAT).
fn to_f16(v: f32) -> f16 {
    return f16(clamp(v, -65504.0, 65504.0));
}

// One S×S accumulator fragment, row-major at cs[slot..], through the epilogue: the
// invocations of its subgroup take its elements in turn.
fn drain(b: u32, row0: u32, col0: u32, slot: u32, lane: u32, sg_size: u32) {
    for (var e = lane; e < S * S; e += sg_size) {
        let row = row0 + e / S;
        let col = col0 + e % S;
        if row < p.m && col < p.n {
            store(b, row, col, cs[slot + e]);
        }
    }
}

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) sg_size: u32,
) {
    let b = wid.z;
    let m_base = wid.y * BM;
    let n_base = wid.x * BN;
    // This subgroup's 32×32 region of the block, and its slot of cs.
    let region = min(sg, 3u);
    let rr = (region / 2u) * 32u;
    let cc = (region % 2u) * 32u;
    let slot = min(sg, 4u) * S * S;
{{COOP_ACC}}
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // X and W tiles, row-major, as f16: loads as in TILED.
        for (var e = 0u; e < BM * BK / 4u / WG; e++) {
            let i = lid + e * WG;
            let r = i / (BK / 4u);
            let c = (i % (BK / 4u)) * 4u;
            let q = x_quad(b, m_base + r, k0 + c);
            let o = r * XS + c;
            xh[o] = to_f16(q.x);
            xh[o + 1u] = to_f16(q.y);
            xh[o + 2u] = to_f16(q.z);
            xh[o + 3u] = to_f16(q.w);
        }
        for (var e = 0u; e < BK * BN / WG; e++) {
            let i = lid + e * WG;
            let c = i % BN;
            wh[(i / BN) * WS + c] = to_f16(w_at(b, k0 + i / BN, n_base + c));
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk += S) {
{{COOP_STEP}}
        }
        workgroupBarrier();
    }
{{COOP_STORE}}
}
#endif

#ifdef REGISTER
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;

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
