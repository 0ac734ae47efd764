// The weight binding of kernels that take f32, f16 or bf16 weights (binding {{B_W}}):
// f16/bf16 are packed two per u32, element 2i in the low half, and unpacked here,
// so half-precision weights work without `shader-f16`.
#ifdef W_F32
@group(0) @binding({{B_W}}) var<storage, read> wt: array<f32>;
fn load_w(i: u32) -> f32 { return wt[i]; }
#else
@group(0) @binding({{B_W}}) var<storage, read> wt: array<u32>;
#ifdef W_BF16
fn load_w(i: u32) -> f32 { return unpack_bf16(wt[i >> 1u], (i & 1u) == 1u); }
#else
fn load_w(i: u32) -> f32 { return unpack_f16(wt[i >> 1u], (i & 1u) == 1u); }
#endif
#endif
