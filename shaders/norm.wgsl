// Row normalisations, one workgroup per row, f32 statistics reduced in workgroup memory:
//   LayerNorm (mean and variance), optionally affine or adaLN-modulated per frame:
//     y = LN(x)·(1 + scale[f]) + shift[f], f = row / frame_rows
//   RMSNorm y = x·rsqrt(mean(x²) + eps)·w (DiT q/k norms, T5 layer norm)
//   L2 (F.normalize) y = x / max(‖x‖, eps)·gain·w (the Wan VAE channel norm, gain = √C)
// Rows are strided views (in_row/out_row), so a norm can read one column block.
// Two schedules: one workgroup per row reducing in workgroup memory (GPUs, wide rows),
// or SERIAL, one invocation per row with no barriers (CPU adapters, where a barrier
// per row costs more than the whole row).
#include "common.wgsl"

struct Params {
    rows: u32, d: u32, in_off: u32, in_row: u32,
    out_off: u32, out_row: u32, frame_rows: u32, mod_row: u32,
    shift_off: u32, scale_off: u32, eps: f32, gain: f32,
}

const WG: u32 = 64u;

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

#ifdef SERIAL
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x + gid.y * 65535u * 64u;
    let lane = 0u;
    let stride = 1u;
    if row >= p.rows {
        return;
    }
    let base = p.in_off + row * p.in_row;
    var s = vec2<f32>(0.0);
    for (var c = 0u; c < p.d; c++) {
        let v = x[base + c];
        s += vec2<f32>(v, v * v);
    }
#else
var<workgroup> part: array<vec2<f32>, WG>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.x + wid.y * 65535u;
    let lane = lid;
    let stride = WG;
    if row >= p.rows {
        return;
    }
    let base = p.in_off + row * p.in_row;
    var s = vec2<f32>(0.0);
    for (var c = lid; c < p.d; c += WG) {
        let v = x[base + c];
        s += vec2<f32>(v, v * v);
    }
    part[lid] = s;
    workgroupBarrier();
    for (var step = WG / 2u; step > 0u; step >>= 1u) {
        if lid < step {
            part[lid] += part[lid + step];
        }
        workgroupBarrier();
    }
    s = part[0];
#endif
    let n = f32(p.d);
#ifdef LAYER
    let mean = s.x / n;
    // E[x²] − mean² loses precision when |mean| ≫ std; a second pass would fix that,
    // but DiT activations are centred enough that f32 keeps ~1e-6 relative here.
    let inv = inverseSqrt(max(s.y / n - mean * mean, 0.0) + p.eps);
#endif
#ifdef RMS
    let mean = 0.0;
    let inv = inverseSqrt(s.y / n + p.eps);
#endif
#ifdef L2
    let mean = 0.0;
    let inv = p.gain / max(sqrt(s.y), p.eps);
#endif
    let out = p.out_off + row * p.out_row;
    let f = row / max(p.frame_rows, 1u);
    for (var c = lane; c < p.d; c += stride) {
        var v = (x[base + c] - mean) * inv;
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
