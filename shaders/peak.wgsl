// Arithmetic-throughput probe for `bench --full`'s share of peak: every invocation runs
// eight independent FMA chains on vec4s (f32, or f16 where the adapter has shader-f16),
// long enough that loads and stores vanish, and stores one sum so nothing is dead code.
// Each chain is a ← a·0.75 + 0.25, which contracts towards 1 and stays exact in binary
// fractions, so the result is finite for any length and checkable against f64.
#ifdef F16
enable f16;
alias S = f16;
alias T = vec4<f16>;
#else
alias S = f32;
alias T = vec4<f32>;
#endif
#include "common.wgsl"

struct Params {
    iters: u32, n: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = folded_index(gid, nwg, 256u);
    // Distinct starting values per chain and invocation, multiples of 1/8.
    let s = T(S(i % 8u) * 0.125);
    var a0 = s;
    var a1 = s + T(0.125);
    var a2 = s + T(0.25);
    var a3 = s + T(0.375);
    var a4 = s + T(0.5);
    var a5 = s + T(0.625);
    var a6 = s + T(0.75);
    var a7 = s + T(0.875);
    let b = T(0.75);
    let c = T(0.25);
    // The only loop, so llvmpipe's per-invocation iteration budget (65535) bounds `iters`.
    for (var n = 0u; n < p.iters; n++) {
        a0 = fma(a0, b, c);
        a1 = fma(a1, b, c);
        a2 = fma(a2, b, c);
        a3 = fma(a3, b, c);
        a4 = fma(a4, b, c);
        a5 = fma(a5, b, c);
        a6 = fma(a6, b, c);
        a7 = fma(a7, b, c);
    }
    let t = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    if i < p.n {
        out[i] = f32(t.x) + f32(t.y) + f32(t.z) + f32(t.w);
    }
}
