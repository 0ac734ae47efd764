#ifdef SRC_F16
enable f16;
#else
#ifdef DST_F16
enable f16;
#endif
#endif
// Data movement without arithmetic, one invocation per output element.
//   default  strided copy over up to 8 dims: dst[Σ i_k·ds_k] = src[Σ i_k·ss_k] for
//            every index i of `size`. Covers patchify/unpatchify, writing a chunk's
//            rows into a ring-buffer cache, layout changes, frame splits and
//            broadcasts / nearest upsampling (a zero source stride repeats an element).
//            SRC_F16 / DST_F16: from / into an f16 tensor (a session's f16 KV and
//            VAE caches); into f16 rounded to nearest and saturated at ±65504, one
//            16-bit store per invocation.
//   FILL     dst[dst_off + i] = value.
// Grids past 65535 workgroups fold into y; `num_workgroups` rebuilds the index.
#include "common.wgsl"

#ifdef FILL
struct Params {
    numel: u32, dst_off: u32, value: f32, _pad: u32,
}
#else
struct Params {
    numel: u32, src_off: u32, dst_off: u32, dims: u32,
    size: array<vec4<u32>, 2>,
    src_stride: array<vec4<u32>, 2>,
    dst_stride: array<vec4<u32>, 2>,
}
#endif

@group(0) @binding(0) var<uniform> p: Params;
#ifndef FILL
#ifdef SRC_F16
@group(0) @binding(1) var<storage, read> src: array<f16>;
#else
@group(0) @binding(1) var<storage, read> src: array<f32>;
#endif
#ifdef DST_F16
@group(0) @binding(2) var<storage, read_write> dst: array<f16>;
#else
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
#endif
#else
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
#endif

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = folded_index(gid, nwg, 256u);
#ifdef FILL
    if i < p.numel {
        dst[p.dst_off + i] = p.value;
    }
#else
    if i >= p.numel {
        return;
    }
    var rest = i;
    var s = p.src_off;
    var d = p.dst_off;
    // Innermost dimension last, as in row-major order; the host merged what it could.
    for (var k = 7; k >= 8 - i32(p.dims); k--) {
        let n = p.size[k / 4][k % 4];
        let idx = rest % n;
        rest /= n;
        s += idx * p.src_stride[k / 4][k % 4];
        d += idx * p.dst_stride[k / 4][k % 4];
    }
    let v = f32(src[s]);
#ifdef DST_F16
    dst[d] = f16(clamp(v, -65504.0, 65504.0));
#else
    dst[d] = v;
#endif
#endif
}
