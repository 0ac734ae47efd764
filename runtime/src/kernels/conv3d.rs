//! `shaders/conv3d.wgsl`: causal 3D convolution on channels-last frames, with the
//! nearest-2× spatial upsample fused into its input and an optional residual.
use crate::device::{Capabilities, DeviceKind};
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use crate::tensor::DType;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv3d {
    pub w_dtype: DType,
    pub upsample: bool,
    pub residual: bool,
    /// Output pixels × channels per invocation (channels spaced 8 apart) of the register
    /// tiling.
    pub tile: (u32, u32),
    /// 64×64 blocks staged in workgroup memory instead (GPUs); `tile` is then unused.
    pub workgroup: bool,
    /// The frame cache is f16 (needs `shader-f16`): half the bytes a session holds.
    pub cache_f16: bool,
}

impl Conv3d {
    /// The variant for `cout` output channels: narrow outputs (the 3-channel head, the
    /// small stages) trade channel columns for pixel rows so no lane idles.
    pub fn new(w_dtype: DType, upsample: bool, residual: bool, cout: usize) -> Conv3d {
        // Every input load is a gather on CPU adapters (lanes differ in channel, not
        // pixel), so wide channel rows pay: up to 16 columns, i.e. 128 channels a group.
        let tn = cout.div_ceil(8).clamp(1, 16) as u32;
        let tile = (if tn > 8 { 4 } else { 8 }, tn);
        Conv3d { w_dtype, upsample, residual, tile, workgroup: false, cache_f16: false }
    }

    /// The variant for this adapter: workgroup blocks on GPUs where the output is wide
    /// enough to fill half a block's 64 channels (every VAE conv but the 3-channel head,
    /// which keeps the register tiling's narrow columns); the register tiling on CPU adapters.
    pub fn for_device(caps: &Capabilities, w_dtype: DType, upsample: bool, residual: bool, cout: usize) -> Conv3d {
        let workgroup = caps.device_type == DeviceKind::Gpu && cout >= 32;
        Conv3d { workgroup, ..Conv3d::new(w_dtype, upsample, residual, cout) }
    }

    /// The unrolled channel step reading `buf`: TM input loads, then per channel column
    /// one weight load and TM FMAs.
    fn step(&self, buf: &str) -> String {
        let (tm, tn) = self.tile;
        let mut s: String = (0..tm).map(|i| format!("                        let x{i} = f32({buf}[base[{i}] + c]) * sc[{i}];\n")).collect();
        for j in 0..tn {
            s += &format!("                        let w{j} = load_w(wk + wc[{j}]);\n");
            s.extend((0..tm).map(|i| format!("                        acc[{i}][{j}] = fma(x{i}, w{j}, acc[{i}][{j}]);\n")));
        }
        s
    }
}

crate::params! {
    #[derive(Default)]
    pub struct Params {
        /// Frames of the chunk (outputs) and the input size.
        pub frames: u32,
        pub h: u32,
        pub w: u32,
        pub cin: u32,
        pub cout: u32,
        pub kt: u32,
        pub kh: u32,
        pub kw: u32,
        /// The band of output rows computed by this dispatch (outputs are band-relative).
        pub y0: u32,
        pub rows: u32,
        /// Multipliers of the two cache frames (0 makes a frame count as zero).
        pub cache_scale0: f32,
        pub cache_scale1: f32,
    }
}

impl Params {
    /// A whole-frame conv of `frames` frames `h×w×cin` → `cout` with kernel `(kt, kh, kw)`.
    pub fn new(frames: usize, h: usize, w: usize, cin: usize, cout: usize, k: (usize, usize, usize), upsample: bool) -> Params {
        let u = |v: usize| v as u32;
        Params {
            frames: u(frames),
            h: u(h),
            w: u(w),
            cin: u(cin),
            cout: u(cout),
            kt: u(k.0),
            kh: u(k.1),
            kw: u(k.2),
            y0: 0,
            rows: u(if upsample { 2 * h } else { h }),
            cache_scale0: 1.0,
            cache_scale1: 1.0,
        }
    }

    /// Output width of the conv grid.
    pub fn out_w(&self, upsample: bool) -> u32 {
        if upsample {
            2 * self.w
        } else {
            self.w
        }
    }
}

/// PyTorch `[Cout, Cin, kt, kh, kw]` → `[kt·kh·kw·Cin, Cout]`, the kernel's layout.
pub fn repack(w: &[f32], cout: usize, cin: usize, kt: usize, kh: usize, kw: usize) -> Vec<f32> {
    let mut out = vec![0.0; w.len()];
    for co in 0..cout {
        for ci in 0..cin {
            for t in 0..kt {
                for y in 0..kh {
                    for x in 0..kw {
                        let k = ((t * kh + y) * kw + x) * cin + ci;
                        out[k * cout + co] = w[(((co * cin + ci) * kt + t) * kh + y) * kw + x];
                    }
                }
            }
        }
    }
    out
}

impl fmt::Display for Conv3d {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.workgroup {
            write!(f, "conv3d_causal_f32x{}_t64x64x16_r4x4", self.w_dtype)?;
        } else {
            write!(f, "conv3d_causal_f32x{}_r{}x{}", self.w_dtype, self.tile.0, self.tile.1)?;
        }
        if self.upsample {
            f.write_str("_up2")?;
        }
        if self.residual {
            f.write_str("_res")?;
        }
        if self.cache_f16 {
            f.write_str("_cachef16")?;
        }
        Ok(())
    }
}

impl Kernel for Conv3d {
    type Params = Params;

    fn wgsl(&self) -> String {
        let d = Defines::new()
            .flag("W_F32", self.w_dtype == DType::F32)
            .flag("W_BF16", self.w_dtype == DType::BF16)
            .set("B_W", 3)
            .flag("UPSAMPLE", self.upsample)
            .flag("RESIDUAL", self.residual)
            .flag("TILED", self.workgroup)
            .flag("CACHE_F16", self.cache_f16)
            .set("TM", self.tile.0)
            .set("TN", self.tile.1)
            .set("CACHE_STEP", self.step("cache"))
            .set("SRC_STEP", self.step("src"));
        expand("conv3d.wgsl", &d)
    }

    fn bindings(&self) -> Vec<Access> {
        let mut v = vec![Access::Read; if self.residual { 5 } else { 4 }];
        v.push(Access::ReadWrite);
        v
    }

    /// One FMA per output and tap of the `kt·kh·kw·cin` reduction.
    fn flops(&self, p: &Params, _operands: &[(DType, usize)]) -> f64 {
        let outputs = p.frames as f64 * p.rows as f64 * p.out_w(self.upsample) as f64 * p.cout as f64;
        2.0 * outputs * (p.kt * p.kh * p.kw * p.cin) as f64
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        let (tm, tn) = if self.workgroup { (8, 8) } else { self.tile };
        [p.cout.div_ceil(8 * tn), (p.rows * p.out_w(self.upsample)).div_ceil(8 * tm), p.frames]
    }
}

pub fn variants() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for w_dtype in [DType::F32, DType::F16, DType::BF16] {
        for upsample in [false, true] {
            for residual in [false, true] {
                let tilings = [3, 16, 32, 96, 384].map(|cout| Conv3d::new(w_dtype, upsample, residual, cout));
                let blocks = Conv3d { workgroup: true, ..Conv3d::new(w_dtype, upsample, residual, 64) };
                for k in tilings.into_iter().chain([blocks]) {
                    for cache_f16 in [false, true] {
                        let k = Conv3d { cache_f16, ..k };
                        v.push((k.to_string(), k.wgsl()));
                    }
                }
            }
        }
    }
    v
}

/// f64 reference on the concatenation `[cache; src]` with PyTorch-layout weights.
pub fn reference(p: &Params, upsample: bool, cache: &[f32], src: &[f32], w: &[f32], bias: &[f32], res: Option<&[f32]>) -> Vec<f32> {
    let (h, wd, cin, cout) = (p.h as usize, p.w as usize, p.cin as usize, p.cout as usize);
    let (kt, kh, kw) = (p.kt as usize, p.kh as usize, p.kw as usize);
    let (gh, gw) = if upsample { (2 * h, 2 * wd) } else { (h, wd) };
    let frame = h * wd * cin;
    let at = |t: isize, y: usize, x: usize, c: usize| -> f64 {
        let (y, x) = if upsample { (y / 2, x / 2) } else { (y, x) };
        if t < 0 {
            let slot = (t + kt as isize - 1) as usize;
            let scale = if slot == 0 { p.cache_scale0 } else { p.cache_scale1 };
            cache[slot * frame + (y * wd + x) * cin + c] as f64 * scale as f64
        } else {
            src[t as usize * frame + (y * wd + x) * cin + c] as f64
        }
    };
    let mut out = Vec::new();
    for t in 0..p.frames as usize {
        for yo in p.y0 as usize..(p.y0 + p.rows) as usize {
            for xo in 0..gw {
                for co in 0..cout {
                    let mut s = bias[co] as f64;
                    for dt in 0..kt {
                        for dy in 0..kh {
                            for dx in 0..kw {
                                let (yy, xx) =
                                    (yo as isize + dy as isize - (kh / 2) as isize, xo as isize + dx as isize - (kw / 2) as isize);
                                if yy < 0 || xx < 0 || yy >= gh as isize || xx >= gw as isize {
                                    continue;
                                }
                                for ci in 0..cin {
                                    let wv = w[(((co * cin + ci) * kt + dt) * kh + dy) * kw + dx] as f64;
                                    s += wv * at(t as isize + dt as isize - kt as isize + 1, yy as usize, xx as usize, ci);
                                }
                            }
                        }
                    }
                    if let Some(r) = res {
                        s += r[out.len()] as f64;
                    }
                    out.push(s as f32);
                }
            }
        }
    }
    out
}
