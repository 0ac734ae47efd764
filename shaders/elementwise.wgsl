// Elementwise ops over flat f32 tensors: y[i] = op(a[i], b[i mod len_b]).
// Broadcasting b with a modulus covers bias rows and per-channel vectors
// without a separate kernel. 2D dispatch so large tensors stay under the
// 65535 workgroups-per-dimension limit.
#include "common.wgsl"

struct Params {
    n: u32,
    len_b: u32,
    row_groups: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row_groups * 256u;
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
