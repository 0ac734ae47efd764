// Causal 3D convolution on channels-last frames [T, H, W, C] (the Wan VAE decoder).
// Output frame t reads input frames t−kt+1 … t: the kt−1 frames before the chunk come
// from `cache` (the previous chunk's last input frames; each scaled by cache_scale,
// so a frame can count as zero, as the temporal upsample's first frame does), the
// rest from `src`. Spatial zero padding keeps the size; with UPSAMPLE the conv runs
// on the nearest-2× upsampled grid, reading src at (y/2, x/2), so the upsampled
// frame is never stored.
// Implicit GEMM: rows are output pixels of a band of output rows (y0 .. y0+rows),
// columns are output channels, the reduction runs over (dt, dy, dx, ci) with
// weights repacked to [kt·kh·kw·Cin, Cout]. Register tiling as in matmul.wgsl:
// invocation (lx, ly) owns TM pixels and TN channels spaced 8 apart, so the SIMD
// lanes of CPU adapters load weights as vectors (TN shrinks for narrow outputs such as
// the 3-channel head). Per tap (dt, dy, dx) each pixel's address, source (cache or
// chunk) and scale (0 outside the frame) are resolved once; the channel loop is then
// straight loads and FMAs, unrolled by the Rust side (CONV_STEP) because llvmpipe
// silently leaves all loops of an invocation after 65535 iterations in total.
#include "common.wgsl"

struct Params {
    frames: u32, h: u32, w: u32, cin: u32,
    cout: u32, kt: u32, kh: u32, kw: u32,
    y0: u32, rows: u32, cache_scale0: f32, cache_scale1: f32,
}

const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cache: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
#include "weights.wgsl"
@group(0) @binding(4) var<storage, read> bias: array<f32>;
#ifdef RESIDUAL
@group(0) @binding(5) var<storage, read> res: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
#else
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
#endif

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
#ifdef UPSAMPLE
    let ow = 2u * p.w;
    let gh = i32(2u * p.h);
#else
    let ow = p.w;
    let gh = i32(p.h);
#endif
    let gw = i32(ow);
    // One output frame per grid layer, so which input frame a tap reads (and whether
    // it is a cache frame) is uniform: the loads need no per-lane branch.
    let t = i32(wid.z);
    let fpix = p.rows * ow;
    let m0 = (wid.y * 8u + lid.y) * TM;
    let n0 = wid.x * 8u * TN + lid.x;
    if m0 >= fpix {
        return;
    }
    var acc: array<array<f32, TN>, TM>;
    var py: array<i32, TM>;
    var px: array<i32, TM>;
    for (var i = 0u; i < TM; i++) {
        let m = min(m0 + i, fpix - 1u);
        py[i] = i32(p.y0 + m / ow);
        px[i] = i32(m % ow);
    }
    var wc: array<u32, TN>;
    for (var j = 0u; j < TN; j++) {
        wc[j] = min(n0 + 8u * j, p.cout - 1u);
    }
    let ph = i32(p.kh / 2u);
    let pw = i32(p.kw / 2u);
    let frame = p.h * p.w * p.cin;
    var base: array<u32, TM>;
    var sc: array<f32, TM>;
    var k0 = 0u;
    for (var dt = 0u; dt < p.kt; dt++) {
        let ti = t + i32(dt) - i32(p.kt) + 1;
        let from_cache = ti < 0;
        let slot = u32(max(ti + i32(p.kt) - 1, 0));
        let fbase = select(u32(max(ti, 0)), slot, from_cache) * frame;
        let fscale = select(1.0, select(p.cache_scale1, p.cache_scale0, slot == 0u), from_cache);
        for (var dy = 0u; dy < p.kh; dy++) {
            for (var dx = 0u; dx < p.kw; dx++) {
                for (var i = 0u; i < TM; i++) {
                    let yy = py[i] + i32(dy) - ph;
                    let xx = px[i] + i32(dx) - pw;
                    let inside = yy >= 0 && xx >= 0 && yy < gh && xx < gw;
#ifdef UPSAMPLE
                    let pix = u32(clamp(yy, 0, gh - 1) / 2) * p.w + u32(clamp(xx, 0, gw - 1) / 2);
#else
                    let pix = u32(clamp(yy, 0, gh - 1)) * p.w + u32(clamp(xx, 0, gw - 1));
#endif
                    base[i] = fbase + pix * p.cin;
                    sc[i] = select(0.0, fscale, inside);
                }
                if from_cache {
                    for (var c = 0u; c < p.cin; c++) {
                        let wk = (k0 + c) * p.cout;
{{CACHE_STEP}}
                    }
                } else {
                    for (var c = 0u; c < p.cin; c++) {
                        let wk = (k0 + c) * p.cout;
{{SRC_STEP}}
                    }
                }
                k0 += p.cin;
            }
        }
    }
    for (var i = 0u; i < TM; i++) {
        let m = m0 + i;
        let o = u32(t) * fpix + m;
        for (var j = 0u; j < TN; j++) {
            let co = n0 + 8u * j;
            if m < fpix && co < p.cout {
                var v = acc[i][j] + bias[co];
#ifdef RESIDUAL
                v += res[o * p.cout + co];
#endif
                y[o * p.cout + co] = v;
            }
        }
    }
}
