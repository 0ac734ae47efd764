// 3-axis rotary embedding (MODEL.md A.3): a head's d/2 channel pairs are complex
// numbers, split into frame / patch-row / patch-column groups, each rotated by
// that coordinate of the token. Angles come from host tables computed in f64 (as
// the official code does), so any frame index works, with no wrap at 1024.
// Table layout: [frames, c0] then [rows, c1] then [cols, c1], each entry (cos, sin).
// Strided rows (x_row/y_row) let it rotate the q or k block of a fused projection.
// IN_PLACE binds only y and rotates the y view itself: each invocation reads its
// pair before writing it, and no two invocations share a pair, so nothing races.
// Dispatches past 65535 workgroups fold into y; `num_workgroups` rebuilds the index.
#include "common.wgsl"

struct Params {
    tokens: u32, heads: u32, d: u32, c0: u32,
    c1: u32, rows: u32, cols: u32, x_off: u32,
    x_row: u32, y_off: u32, y_row: u32, row_table: u32,
    col_table: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
#ifdef IN_PLACE
@group(0) @binding(1) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
#endif

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // One invocation per (token, head, pair).
    let pairs = p.d / 2u;
    let i = folded_index(gid, nwg, 64u);
    if i >= p.tokens * p.heads * pairs {
        return;
    }
    let j = i % pairs;
    let h = (i / pairs) % p.heads;
    let t = i / (pairs * p.heads);
    let per_frame = p.rows * p.cols;
    var cs: vec2<f32>;
    if j < p.c0 {
        cs = table[(t / per_frame) * p.c0 + j];
    } else if j < p.c0 + p.c1 {
        cs = table[p.row_table + ((t / p.cols) % p.rows) * p.c1 + j - p.c0];
    } else {
        cs = table[p.col_table + (t % p.cols) * p.c1 + j - p.c0 - p.c1];
    }
    let dst = p.y_off + t * p.y_row + h * p.d + 2u * j;
#ifdef IN_PLACE
    let a = y[dst];
    let b = y[dst + 1u];
#else
    let src = p.x_off + t * p.x_row + h * p.d + 2u * j;
    let a = x[src];
    let b = x[src + 1u];
#endif
    y[dst] = a * cs.x - b * cs.y;
    y[dst + 1u] = a * cs.y + b * cs.x;
}
