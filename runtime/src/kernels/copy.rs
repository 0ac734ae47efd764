//! `shaders/copy.wgsl`: strided copy / permutation / broadcast between f32 and f16
//! tensors (f16: the KV and VAE caches a session holds) and fill.
use crate::error::{Result, RuntimeError};
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use crate::tensor::DType;
use std::fmt;

/// Strided copy: bindings `[src, dst]`, [`Params`], each f32 or f16. Into f16 it
/// rounds to nearest and saturates at f16's largest finite value. f16 needs
/// `shader-f16`: each invocation stores one `f16` of an `array<f16>`, a 16-bit store, so
/// neighbouring halves of a word are written by different invocations without a
/// read-modify-write race (which a packed-u32 store of one half would have).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Copy {
    pub src_f16: bool,
    pub dst_f16: bool,
}

impl Copy {
    /// f32 (or u32: bits are moved as they are) to f32.
    pub const F32: Copy = Copy { src_f16: false, dst_f16: false };

    /// The copy between tensors of these dtypes, if there is one.
    pub fn between(src: DType, dst: DType) -> Option<Copy> {
        let f16 = |d: DType| match d {
            DType::F32 | DType::U32 => Some(false),
            DType::F16 => Some(true),
            _ => None,
        };
        let (src_f16, dst_f16) = (f16(src)?, f16(dst)?);
        // u32 ids or ranges only move between 32-bit tensors.
        (!(src_f16 || dst_f16) || (src != DType::U32 && dst != DType::U32)).then_some(Copy { src_f16, dst_f16 })
    }

    fn dtype(f16: bool) -> DType {
        if f16 {
            DType::F16
        } else {
            DType::F32
        }
    }
}

/// Fill: bindings `[dst]`, [`FillParams`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fill;

crate::params! {
    #[derive(Default)]
    pub struct Params {
        pub numel: u32,
        pub src_off: u32,
        pub dst_off: u32,
        /// Dimensions left after merging (the last `dims` entries of the arrays are live).
        pub dims: u32,
        pub size: [u32; 8],
        pub src_stride: [u32; 8],
        pub dst_stride: [u32; 8],
    }
}

crate::params! {
    #[derive(Default)]
    pub struct FillParams {
        pub numel: u32,
        pub dst_off: u32,
        pub value: f32,
        pub _pad: u32,
    }
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
    /// `dst_off + Σ i·dst_stride`. At most [`MAX_DIMS`] dimensions (every helper
    /// below uses ≤ 6, so more is a caller bug, not bad input).
    pub fn new(size: &[usize], src_off: usize, src_stride: &[usize], dst_off: usize, dst_stride: &[usize]) -> Params {
        assert!(size.len() <= MAX_DIMS && size.len() == src_stride.len() && size.len() == dst_stride.len(), "copy of {size:?}");
        // Merge dims that are contiguous with their inner neighbour in both tensors and drop
        // size-1 dims: every live dim costs the shader a division per element.
        let mut dims: Vec<[usize; 3]> = Vec::new();
        for k in (0..size.len()).rev().filter(|&k| size[k] != 1) {
            match dims.last_mut() {
                Some([n, ss, ds]) if src_stride[k] == *ss * *n && dst_stride[k] == *ds * *n => *n *= size[k],
                _ => dims.push([size[k], src_stride[k], dst_stride[k]]),
            }
        }
        let mut p =
            Params { src_off: src_off as u32, dst_off: dst_off as u32, dims: dims.len() as u32, size: [1; 8], ..Default::default() };
        for (j, [n, ss, ds]) in dims.into_iter().enumerate() {
            let k = MAX_DIMS - 1 - j;
            (p.size[k], p.src_stride[k], p.dst_stride[k]) = (n as u32, ss as u32, ds as u32);
        }
        p.numel = size.iter().product::<usize>() as u32;
        p
    }

    /// `rows` rows of width `d` from row `src_row` of a `[*, d]` tensor to row `dst_row` of another
    /// (a chunk's K/V rows into their ring-buffer slots).
    pub fn rows(rows: usize, d: usize, src_row: usize, dst_row: usize) -> Params {
        Params::new(&[rows, d], src_row * d, &[d, 1], dst_row * d, &[d, 1])
    }

    /// `n` rows of every frame, from row `src.0` of frames of `src.1` rows to row
    /// `dst.0` of frames of `dst.1` rows (`row` values a row): row bands of
    /// channels-last frames and their halos.
    pub fn frame_rows(frames: usize, n: usize, row: usize, src: (usize, usize), dst: (usize, usize)) -> Params {
        Params::new(&[frames, n * row], src.0 * row, &[src.1 * row, 1], dst.0 * row, &[dst.1 * row, 1])
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

    /// Channel-first `[F, C, P]` → channels-last `[F, P, C]` (P = h·w pixels).
    pub fn to_channels_last(frames: usize, c: usize, pixels: usize) -> Params {
        Params::new(&[frames, pixels, c], 0, &[c * pixels, 1, pixels], 0, &contiguous(&[frames, pixels, c]))
    }

    /// Channels-last `[F, P, C]` → channel-first `[F, C, P]`.
    pub fn to_channels_first(frames: usize, pixels: usize, c: usize) -> Params {
        Params::new(&[frames, c, pixels], 0, &[pixels * c, 1, c], 0, &contiguous(&[frames, c, pixels]))
    }

    /// Nearest 2× spatial upsampling, channels-last `[F, h, w, C]` → `[F, 2h, 2w, C]`:
    /// the output is walked as `[F, h, 2, w, 2, C]` and the two 2-axes read with stride 0.
    pub fn upsample2x(frames: usize, h: usize, w: usize, c: usize) -> Params {
        let size = [frames, h, 2, w, 2, c];
        Params::new(&size, 0, &[h * w * c, w * c, 0, c, 0, 1], 0, &contiguous(&size))
    }

    /// The VAE time conv's `2C` output channels as two consecutive frames
    /// (TEXT_VAE.md: reshape (2, C), frame 2f+k takes channels [k·C, (k+1)·C)),
    /// channels-last `[F, P, 2C]` → `[2F, P, C]`.
    pub fn split_frames(frames: usize, pixels: usize, c: usize) -> Params {
        let size = [frames, 2, pixels, c];
        Params::new(&size, 0, &[pixels * 2 * c, c, 2 * c, 1], 0, &contiguous(&size))
    }

    /// One past the largest (source, destination) element index this copy touches.
    pub fn extents(&self) -> (u64, u64) {
        if self.numel == 0 {
            return (0, 0);
        }
        let reach =
            |off: u32, stride: &[u32; 8]| off as u64 + (0..MAX_DIMS).map(|k| (self.size[k] as u64 - 1) * stride[k] as u64).sum::<u64>() + 1;
        (reach(self.src_off, &self.src_stride), reach(self.dst_off, &self.dst_stride))
    }
}

impl fmt::Display for Copy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.src_f16, self.dst_f16) {
            (false, false) => f.write_str("copy_strided"),
            (s, d) => write!(f, "copy_strided_{}_to_{}", Copy::dtype(s), Copy::dtype(d)),
        }
    }
}

impl fmt::Display for Fill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("copy_fill")
    }
}

impl Kernel for Copy {
    type Params = Params;

    fn wgsl(&self) -> String {
        expand("copy.wgsl", &Defines::new().flag("SRC_F16", self.src_f16).flag("DST_F16", self.dst_f16))
    }

    fn bindings(&self) -> Vec<Access> {
        vec![Access::Read, Access::ReadWrite]
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        super::grid_1d(p.numel.div_ceil(256))
    }

    /// Operands of the kernel's dtypes (u32 for f32: bits move as they are), and the
    /// copy stays inside both.
    fn check(&self, p: &Params, operands: &[(DType, usize)]) -> Result<()> {
        let wants = [Copy::dtype(self.src_f16), Copy::dtype(self.dst_f16)];
        let dtypes = (self.src_f16 || self.dst_f16).then_some(wants);
        check_extents(&self.to_string(), p, operands, dtypes)
    }
}

/// A strided copy's operands: two, of `dtypes` when given, each holding every element
/// the copy reaches.
fn check_extents(label: &str, p: &Params, operands: &[(DType, usize)], dtypes: Option<[DType; 2]>) -> Result<()> {
    let (s, d) = p.extents();
    let [(src_dtype, src_len), (dst_dtype, dst_len)] = operands else {
        return Err(RuntimeError::Validation { label: label.into(), message: format!("{} operands bound, 2 expected", operands.len()) });
    };
    if let Some([ws, wd]) = dtypes.filter(|&[ws, wd]| (ws, wd) != (*src_dtype, *dst_dtype)) {
        let message = format!("{src_dtype} → {dst_dtype} bound, the kernel copies {ws} → {wd}");
        return Err(RuntimeError::Validation { label: label.into(), message });
    }
    if s > *src_len as u64 || d > *dst_len as u64 {
        let message = format!("copy reaches element {s} of a {src_len}-element source and {d} of a {dst_len}-element destination");
        return Err(RuntimeError::Tensor { label: label.into(), message });
    }
    Ok(())
}

impl Kernel for Fill {
    type Params = FillParams;

    fn wgsl(&self) -> String {
        expand("copy.wgsl", &Defines::new().flag("FILL", true))
    }

    fn bindings(&self) -> Vec<Access> {
        vec![Access::ReadWrite]
    }

    fn workgroups(&self, p: &FillParams) -> [u32; 3] {
        super::grid_1d(p.numel.div_ceil(256))
    }
}

pub fn variants() -> Vec<(String, String)> {
    let copies = [false, true].into_iter().flat_map(|src_f16| [false, true].map(|dst_f16| Copy { src_f16, dst_f16 }));
    copies.map(|c| (c.to_string(), c.wgsl())).chain([(Fill.to_string(), Fill.wgsl())]).collect()
}

/// CPU reference: the same index arithmetic, written as nested iteration. Into f16,
/// round the result with [`f16_saturating`].
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

/// What a [`Copy`] into f16 stores for `x`: f16 round-to-nearest of `x` clamped to ±65504.
pub fn f16_saturating(x: f32) -> f32 {
    half::f16::from_f32(x.clamp(-65504.0, 65504.0)).to_f32()
}
