//! `shaders/copy.wgsl`: strided copy / permutation / broadcast of f32 tensors.
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Copy;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Params {
    pub numel: u32,
    pub src_off: u32,
    pub dst_off: u32,
    pub row_groups: u32,
    pub size: [u32; 8],
    pub src_stride: [u32; 8],
    pub dst_stride: [u32; 8],
}

pub const MAX_DIMS: usize = 8;

/// Row-major strides of a contiguous tensor of `shape`.
pub fn contiguous(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

impl Params {
    /// Copies every index of `size`, reading `src_off + Σ i·src_stride` and writing
    /// `dst_off + Σ i·dst_stride`. At most [`MAX_DIMS`] dimensions.
    pub fn new(size: &[usize], src_off: usize, src_stride: &[usize], dst_off: usize, dst_stride: &[usize]) -> Params {
        assert!(size.len() <= MAX_DIMS && size.len() == src_stride.len() && size.len() == dst_stride.len(), "copy of {size:?}");
        let pad = MAX_DIMS - size.len();
        let mut p = Params { src_off: src_off as u32, dst_off: dst_off as u32, ..Default::default() };
        p.size = [1; 8];
        for k in 0..size.len() {
            p.size[pad + k] = size[k] as u32;
            p.src_stride[pad + k] = src_stride[k] as u32;
            p.dst_stride[pad + k] = dst_stride[k] as u32;
        }
        p.numel = size.iter().product::<usize>() as u32;
        p.row_groups = super::grid_1d(p.numel.div_ceil(256))[0];
        p
    }

    /// `rows` rows of width `d` from row `src_row` of a `[*, d]` tensor to row `dst_row` of another.
    pub fn rows(rows: usize, d: usize, src_row: usize, dst_row: usize) -> Params {
        Params::new(&[rows, d], src_row * d, &[d, 1], dst_row * d, &[d, 1])
    }

    /// `[F, C, h, w]` latents → tokens `[F·(h/2)·(w/2), C·2·2]`, each patch flattened in (C, ph, pw) order.
    pub fn patchify(frames: usize, c: usize, h: usize, w: usize) -> Params {
        let (hp, wp) = (h / 2, w / 2);
        // Loop over (f, hp, wp, c, ph, pw); source is [F, C, h, w], destination [F, hp, wp, c, 2, 2].
        let src = [c * h * w, 2 * w, 2, h * w, w, 1];
        Params::new(&[frames, hp, wp, c, 2, 2], 0, &src, 0, &contiguous(&[frames, hp, wp, c, 2, 2]))
    }

    /// Head output `[F·(h/2)·(w/2), 2·2·C]` in (ph, pw, C) order → `[F, C, h, w]`.
    pub fn unpatchify(frames: usize, c: usize, h: usize, w: usize) -> Params {
        let (hp, wp) = (h / 2, w / 2);
        let dst = [c * h * w, 2 * w, 2, w, 1, h * w];
        Params::new(&[frames, hp, wp, 2, 2, c], 0, &contiguous(&[frames, hp, wp, 2, 2, c]), 0, &dst)
    }
}

impl fmt::Display for Copy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("copy_strided")
    }
}

impl Kernel for Copy {
    type Params = Params;

    fn wgsl(&self) -> String {
        expand("copy.wgsl", &Defines::new())
    }

    fn bindings(&self) -> Vec<Access> {
        vec![Access::Read, Access::ReadWrite]
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        super::grid_1d(p.numel.div_ceil(256))
    }
}

pub fn variants() -> Vec<(String, String)> {
    vec![(Copy.to_string(), Copy.wgsl())]
}

/// CPU reference: the same index arithmetic, written as nested iteration.
pub fn reference(p: &Params, src: &[f32], dst: &mut [f32]) {
    for i in 0..p.numel as usize {
        let (mut rest, mut s, mut d) = (i, p.src_off as usize, p.dst_off as usize);
        for k in (0..MAX_DIMS).rev() {
            let idx = rest % p.size[k] as usize;
            rest /= p.size[k] as usize;
            s += idx * p.src_stride[k] as usize;
            d += idx * p.dst_stride[k] as usize;
        }
        dst[d] = src[s];
    }
}
