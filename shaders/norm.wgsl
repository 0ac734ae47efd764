// Row reductions over the last dim, f32 statistics:
//   LAYER   LayerNorm, optionally affine or adaLN-modulated per frame:
//           y = LN(x)·(1 + scale[f]) + shift[f], f = row / frame_rows
//   RMS     y = x·rsqrt(mean(x²) + eps)·w (DiT q/k norms, T5 layer norm)
//   L2      y = x / max(‖x‖, eps)·gain·w (F.normalize: the Wan VAE channel norm, gain = √C)
//   SOFTMAX y = softmax(gain·x)
// then optionally SiLU (the VAE always runs norm → SiLU → conv).
// Rows are strided views (in_row/out_row), so a norm can read one column block.
//
// Each lane accumulates a vec2 over its strided slice of the row, and lanes are
// merged with `combine`: sums for the norms, (max, Σexp) pairs for the softmax,
// which stays one pass (online softmax). LayerNorm sums x − k with k the row's first
// element, so E[(x−k)²] − E[x−k]² does not cancel when |mean| ≫ std (VAE activations).
// Schedules, picked by the host per adapter:
//   SERIAL    one invocation per row, no barriers (CPU adapters, where a barrier per
//             row costs more than the whole row);
//   SUBGROUP  one workgroup per row, subgroupAdd/Max then one barrier;
//   otherwise one workgroup per row, tree reduction in workgroup memory.
// Rows beyond 65535 workgroups fold into y; `num_workgroups` rebuilds the row index.
// (No `enable subgroups;`: naga 30 rejects it and gates subgroup ops on the device feature.)
#include "common.wgsl"

struct Params {
    rows: u32, d: u32, in_off: u32, in_row: u32,
    out_off: u32, out_row: u32, frame_rows: u32, mod_row: u32,
    shift_off: u32, scale_off: u32, eps: f32, gain: f32,
}

const WG: u32 = 64u;
// Below every finite logit, yet exp(NEG − NEG) stays finite (unlike −inf − −inf).
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#ifdef WEIGHT
@group(0) @binding(2) var<storage, read> w: array<f32>;
#endif
#ifdef AFFINE
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#endif
#ifdef MODULATED
@group(0) @binding(2) var<storage, read> modulation: array<f32>;
#endif
@group(0) @binding({{B_Y}}) var<storage, read_write> y: array<f32>;

#ifdef SOFTMAX
fn empty() -> vec2<f32> {
    return vec2<f32>(NEG, 0.0);
}

fn push(s: vec2<f32>, v: f32) -> vec2<f32> {
    let m = max(s.x, v);
    return vec2<f32>(m, s.y * exp(s.x - m) + exp(v - m));
}

fn combine(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let m = max(a.x, b.x);
    return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}
#else
fn empty() -> vec2<f32> {
    return vec2<f32>(0.0);
}

fn push(s: vec2<f32>, v: f32) -> vec2<f32> {
    return s + vec2<f32>(v, v * v);
}

fn combine(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return a + b;
}
#endif

// The value a lane accumulates for element c of the row starting at `base`.
fn load(base: u32, c: u32, shift: f32) -> f32 {
#ifdef SOFTMAX
    return p.gain * x[base + c];
#else
    return x[base + c] - shift;
#endif
}

#ifdef SERIAL
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = folded_index(gid, nwg, WG);
    let lane = 0u;
    let stride = 1u;
#else
var<workgroup> part: array<vec2<f32>, WG>;

#ifdef SUBGROUP
@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) sg_count: u32,
) {
#else
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
#endif
    let row = folded_index(wid, nwg, 1u);
    let lane = lid;
    let stride = WG;
#endif
    // Uniform per workgroup (whole workgroups share a row), so barriers below stay uniform.
    if row >= p.rows {
        return;
    }
    let base = p.in_off + row * p.in_row;
#ifdef LAYER
    let shift = x[base];
#else
    let shift = 0.0;
#endif
    var s = empty();
    for (var c = lane; c < p.d; c += stride) {
        s = push(s, load(base, c, shift));
    }
#ifndef SERIAL
#ifdef SUBGROUP
#ifdef SOFTMAX
    let m = subgroupMax(s.x);
    s = vec2<f32>(m, subgroupAdd(s.y * exp(s.x - m)));
#else
    s = subgroupAdd(s);
#endif
    if sg_lane == 0u {
        part[sg_id] = s;
    }
    workgroupBarrier();
    // At most WG / subgroup_min partials: every lane folds them itself.
    s = part[0];
    for (var k = 1u; k < sg_count; k++) {
        s = combine(s, part[k]);
    }
#else
    part[lid] = s;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step >>= 1u) {
        if lid < step {
            part[lid] = combine(part[lid], part[lid + step]);
        }
        workgroupBarrier();
    }
    s = part[0];
#endif
#endif
    let n = f32(p.d);
#ifdef LAYER
    let center = s.x / n;
    let inv = inverseSqrt(max(s.y / n - center * center, 0.0) + p.eps);
#endif
#ifdef RMS
    let center = 0.0;
    let inv = inverseSqrt(s.y / n + p.eps);
#endif
#ifdef L2
    let center = 0.0;
    let inv = p.gain / max(sqrt(s.y), p.eps);
#endif
#ifdef SOFTMAX
    let center = s.x;
    let inv = 1.0 / s.y;
#endif
    let out = p.out_off + row * p.out_row;
    let f = row / max(p.frame_rows, 1u);
    for (var c = lane; c < p.d; c += stride) {
#ifdef SOFTMAX
        var v = exp(load(base, c, shift) - center) * inv;
#else
        var v = (load(base, c, shift) - center) * inv;
#endif
#ifdef WEIGHT
        v *= w[c];
#endif
#ifdef AFFINE
        v += bias[c];
#endif
#ifdef MODULATED
        let m = f * p.mod_row;
        v = v * (1.0 + modulation[m + p.scale_off + c]) + modulation[m + p.shift_off + c];
#endif
#ifdef SILU
        v = silu(v);
#endif
        y[out + c] = v;
    }
}
