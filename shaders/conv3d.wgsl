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
// lanes of CPU adapters load weights as vectors.
#include "common.wgsl"

struct Params {
    frames: u32, h: u32, w: u32, cin: u32,
    cout: u32, kt: u32, kh: u32, kw: u32,
    y0: u32, rows: u32, cache_scale0: f32, cache_scale1: f32,
}

const TM: u32 = 4u;
const TN: u32 = 4u;

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

/// Input value at frame `t` (−(kt−1) … frames−1), row `yy`, column `xx` of the conv grid.
fn input(t: i32, yy: i32, xx: i32, c: u32) -> f32 {
#ifdef UPSAMPLE
    let gh = i32(2u * p.h);
    let gw = i32(2u * p.w);
#else
    let gh = i32(p.h);
    let gw = i32(p.w);
#endif
    if yy < 0 || xx < 0 || yy >= gh || xx >= gw {
        return 0.0;
    }
#ifdef UPSAMPLE
    let pix = u32(yy / 2) * p.w + u32(xx / 2);
#else
    let pix = u32(yy) * p.w + u32(xx);
#endif
    let frame = p.h * p.w * p.cin;
    if t < 0 {
        let slot = u32(t + i32(p.kt) - 1);
        return cache[slot * frame + pix * p.cin + c] * select(p.cache_scale1, p.cache_scale0, slot == 0u);
    }
    return src[u32(t) * frame + pix * p.cin + c];
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
#ifdef UPSAMPLE
    let ow = 2u * p.w;
#else
    let ow = p.w;
#endif
    let pixels = p.frames * p.rows * ow;
    let m0 = (wid.y * 8u + lid.y) * TM;
    let n0 = wid.x * 8u * TN + lid.x;
    if m0 >= pixels {
        return;
    }
    var acc: array<array<f32, TN>, TM>;
    var pt: array<i32, TM>;
    var py: array<i32, TM>;
    var px: array<i32, TM>;
    for (var i = 0u; i < TM; i++) {
        let m = min(m0 + i, pixels - 1u);
        pt[i] = i32(m / (p.rows * ow));
        py[i] = i32(p.y0 + (m / ow) % p.rows);
        px[i] = i32(m % ow);
    }
    var wc: array<u32, TN>;
    for (var j = 0u; j < TN; j++) {
        wc[j] = min(n0 + 8u * j, p.cout - 1u);
    }
    let ph = i32(p.kh / 2u);
    let pw = i32(p.kw / 2u);
    var k = 0u;
    for (var dt = 0u; dt < p.kt; dt++) {
        for (var dy = 0u; dy < p.kh; dy++) {
            for (var dx = 0u; dx < p.kw; dx++) {
                for (var c = 0u; c < p.cin; c++) {
                    var xv: array<f32, TM>;
                    for (var i = 0u; i < TM; i++) {
                        xv[i] = input(pt[i] + i32(dt) - i32(p.kt) + 1, py[i] + i32(dy) - ph, px[i] + i32(dx) - pw, c);
                    }
                    for (var j = 0u; j < TN; j++) {
                        let wv = load_w(k * p.cout + wc[j]);
                        for (var i = 0u; i < TM; i++) {
                            acc[i][j] = fma(xv[i], wv, acc[i][j]);
                        }
                    }
                    k++;
                }
            }
        }
    }
    for (var i = 0u; i < TM; i++) {
        let m = m0 + i;
        for (var j = 0u; j < TN; j++) {
            let co = n0 + 8u * j;
            if m < pixels && co < p.cout {
                var v = acc[i][j] + bias[co];
#ifdef RESIDUAL
                v += res[m * p.cout + co];
#endif
                y[m * p.cout + co] = v;
            }
        }
    }
}
