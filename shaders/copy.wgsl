// Strided copies over up to 8 dimensions: dst[Σ i_k·ds_k] = src[Σ i_k·ss_k] for every
// index i of `size`. One kernel covers patchify/unpatchify, writing a chunk's rows
// into a ring-buffer cache, layout changes and broadcasts (a zero source stride).

struct Params {
    numel: u32, src_off: u32, dst_off: u32, row_groups: u32,
    size: array<vec4<u32>, 2>,
    src_stride: array<vec4<u32>, 2>,
    dst_stride: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row_groups * 256u;
    if i >= p.numel {
        return;
    }
    var rest = i;
    var s = p.src_off;
    var d = p.dst_off;
    // Innermost dimension last, as in row-major order.
    for (var k = 7; k >= 0; k--) {
        let n = p.size[k / 4][k % 4];
        let idx = rest % n;
        rest /= n;
        s += idx * p.src_stride[k / 4][k % 4];
        d += idx * p.dst_stride[k / 4][k % 4];
    }
    dst[d] = src[s];
}
