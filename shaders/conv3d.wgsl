#ifdef CACHE_F16
enable f16;
#endif
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
// TILED (GPUs): the same implicit GEMM in 64-pixel × 64-channel blocks: per tap, the
// 64 pixels' next 16 input channels (gathered, zero outside the frame) and the matching
// 16 × 64 weights are staged in workgroup memory, and each of the 16×16 invocations
// accumulates 4 pixels × 4 channels (channels 16 apart, so a row of invocations reads
// 16 consecutive weights and one broadcast input).
#include "common.wgsl"

struct Params {
    frames: u32, h: u32, w: u32, cin: u32,
    cout: u32, kt: u32, kh: u32, kw: u32,
    y0: u32, rows: u32, cache_scale0: f32, cache_scale1: f32,
}

const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;

@group(0) @binding(0) var<uniform> p: Params;
#ifdef CACHE_F16
@group(0) @binding(1) var<storage, read> cache: array<f16>;
#else
@group(0) @binding(1) var<storage, read> cache: array<f32>;
#endif
@group(0) @binding(2) var<storage, read> src: array<f32>;
#include "weights.wgsl"
@group(0) @binding(4) var<storage, read> bias: array<f32>;
#ifdef RESIDUAL
@group(0) @binding(5) var<storage, read> res: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
#else
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
#endif

// The conv grid's size: the input's, or twice it with UPSAMPLE.
fn grid_w() -> u32 {
#ifdef UPSAMPLE
    return 2u * p.w;
#else
    return p.w;
#endif
}

fn grid_h() -> u32 {
#ifdef UPSAMPLE
    return 2u * p.h;
#else
    return p.h;
#endif
}

// Where tap dt of output frame t reads: the first element of its input frame (in `cache`
// when it lies before the chunk), and that frame's scale.
struct Tap {
    base: u32,
    scale: f32,
    from_cache: bool,
}

fn tap(t: i32, dt: u32) -> Tap {
    let ti = t + i32(dt) - i32(p.kt) + 1;
    let from_cache = ti < 0;
    let slot = u32(max(ti + i32(p.kt) - 1, 0));
    let base = select(u32(max(ti, 0)), slot, from_cache) * p.h * p.w * p.cin;
    let scale = select(1.0, select(p.cache_scale1, p.cache_scale0, slot == 0u), from_cache);
    return Tap(base, scale, from_cache);
}

// The input pixel under grid position (yy, xx), clamped into the frame (a read outside
// it is scaled to zero by the caller).
fn input_pixel(yy: i32, xx: i32) -> u32 {
    let y = u32(clamp(yy, 0, i32(grid_h()) - 1));
    let x = u32(clamp(xx, 0, i32(grid_w()) - 1));
#ifdef UPSAMPLE
    return (y / 2u) * p.w + x / 2u;
#else
    return y * p.w + x;
#endif
}

fn inside(yy: i32, xx: i32) -> bool {
    return yy >= 0 && xx >= 0 && yy < i32(grid_h()) && xx < i32(grid_w());
}

// The epilogue of both tilings: bias, residual, store.
fn store(o: u32, co: u32, acc: f32) {
    var v = acc + bias[co];
#ifdef RESIDUAL
    v += res[o * p.cout + co];
#endif
    y[o * p.cout + co] = v;
}

#ifdef TILED
// Rows padded to 17 so the column reads of a tap's channels hit different banks.
var<workgroup> xs: array<array<f32, 17>, 64>;
var<workgroup> ws: array<array<f32, 64>, 16>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ow = grid_w();
    let t = i32(wid.z);
    let fpix = p.rows * ow;
    let m_base = wid.y * 64u;
    let n_base = wid.x * 64u;
    let tx = lid % 16u;
    let ty = lid / 16u;
    // This invocation stages channel `lc` of pixels lid/16 + 16·e of the block.
    let lc = lid % 16u;
    var py: array<i32, 4>;
    var px: array<i32, 4>;
    var live: array<bool, 4>;
    for (var e = 0u; e < 4u; e++) {
        let m = m_base + ty + 16u * e;
        live[e] = m < fpix;
        let mm = min(m, fpix - 1u);
        py[e] = i32(p.y0 + mm / ow);
        px[e] = i32(mm % ow);
    }
    let ph = i32(p.kh / 2u);
    let pw = i32(p.kw / 2u);
    var acc: array<array<f32, 4>, 4>;
    var base: array<u32, 4>;
    var sc: array<f32, 4>;
    var k0 = 0u;
    for (var dt = 0u; dt < p.kt; dt++) {
        let tp = tap(t, dt);
        let from_cache = tp.from_cache;
        for (var dy = 0u; dy < p.kh; dy++) {
            for (var dx = 0u; dx < p.kw; dx++) {
                for (var e = 0u; e < 4u; e++) {
                    let yy = py[e] + i32(dy) - ph;
                    let xx = px[e] + i32(dx) - pw;
                    base[e] = tp.base + input_pixel(yy, xx) * p.cin;
                    sc[e] = select(0.0, tp.scale, live[e] && inside(yy, xx));
                }
                for (var c0 = 0u; c0 < p.cin; c0 += 16u) {
                    let c = c0 + lc;
                    for (var e = 0u; e < 4u; e++) {
                        var xv = 0.0;
                        if c < p.cin {
                            // from_cache is uniform over the workgroup (one frame per layer).
                            if from_cache {
                                xv = f32(cache[base[e] + c]);
                            } else {
                                xv = src[base[e] + c];
                            }
                        }
                        xs[ty + 16u * e][lc] = xv * sc[e];
                    }
                    // Weight rows are contiguous along Cout: consecutive invocations, consecutive words.
                    for (var e = 0u; e < 4u; e++) {
                        let idx = lid + 256u * e;
                        let kr = idx / 64u;
                        let col = n_base + idx % 64u;
                        var wv = 0.0;
                        if c0 + kr < p.cin && col < p.cout {
                            wv = load_w((k0 + c0 + kr) * p.cout + col);
                        }
                        ws[kr][idx % 64u] = wv;
                    }
                    workgroupBarrier();
                    for (var kk = 0u; kk < 16u; kk++) {
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
                k0 += p.cin;
            }
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m_base + ty * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let co = n_base + tx + 16u * j;
            if m < fpix && co < p.cout {
                store(u32(t) * fpix + m, co, acc[i][j]);
            }
        }
    }
}
#else
@compute @workgroup_size(8, 8, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let ow = grid_w();
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
    var base: array<u32, TM>;
    var sc: array<f32, TM>;
    var k0 = 0u;
    for (var dt = 0u; dt < p.kt; dt++) {
        let tp = tap(t, dt);
        for (var dy = 0u; dy < p.kh; dy++) {
            for (var dx = 0u; dx < p.kw; dx++) {
                for (var i = 0u; i < TM; i++) {
                    let yy = py[i] + i32(dy) - ph;
                    let xx = px[i] + i32(dx) - pw;
                    base[i] = tp.base + input_pixel(yy, xx) * p.cin;
                    sc[i] = select(0.0, tp.scale, inside(yy, xx));
                }
                if tp.from_cache {
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
                store(o, co, acc[i][j]);
            }
        }
    }
}
#endif
