// Shared helpers, included by kernel files.
// f16 and bf16 tensors are stored two per u32 (element 2i in the low half), so they
// can be read on adapters without `shader-f16`.

fn unpack_bf16(word: u32, hi: bool) -> f32 {
    return bitcast<f32>(select(word << 16u, word & 0xffff0000u, hi));
}

fn unpack_f16(word: u32, hi: bool) -> f32 {
    let v = unpack2x16float(word);
    return select(v.x, v.y, hi);
}

// The flat index of a 1-D grid that `kernels::grid_1d` folded over x and y (at most 65535
// workgroups a dimension): each y holds nwg.x workgroups of `size` invocations. The one
// scheme for every kernel; pass the workgroup id and size 1 for an index per workgroup.
fn folded_index(id: vec3<u32>, nwg: vec3<u32>, size: u32) -> u32 {
    return id.x + id.y * nwg.x * size;
}

fn gelu_tanh(x: f32) -> f32 {
    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), written with exp to stay finite for large |x|.
    let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * u));
}

fn silu(x: f32) -> f32 {
    return x / (1.0 + exp(-x));
}
