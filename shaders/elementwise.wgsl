// Elementwise ops over flat f32 tensors: y[i] = op(a[i], b[i mod len_b]).
// Broadcasting b with a modulus covers bias rows and per-channel vectors
// without a separate kernel. Grids past 65535 workgroups fold into y.
#include "common.wgsl"

struct Params {
    n: u32,
    len_b: u32,
    alpha: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = folded_index(gid, nwg, 256u);
    if i >= p.n {
        return;
    }
    let x = a[i];
    let w = b[i % p.len_b];
#ifdef OP_ADD
    y[i] = x + p.alpha * w;
#endif
#ifdef OP_MUL
    y[i] = x * w;
#endif
#ifdef OP_SILU
    y[i] = silu(x);
#endif
#ifdef OP_GELU
    y[i] = gelu_tanh(x);
#endif
}
