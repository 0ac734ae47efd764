//! `shaders/matmul.wgsl`: batched `Y = epilogue(X·W + b)` with f32/f16/bf16 weights
//! stored transposed (`[in, out]`, see [`transpose`]).
use crate::device::{Capabilities, DeviceKind};
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use crate::tensor::DType;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    None,
    Gelu,
    Silu,
}

/// What is added after the activation: nothing, `R`, or `R + G[row/rows_per_gate] ⊙ ·`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Residual {
    None,
    Add,
    Gated,
}

/// How outputs are distributed over invocations (see the header of matmul.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tiling {
    /// One invocation per output: the baseline.
    Naive,
    /// rows × cols outputs per invocation in registers, no workgroup memory (CPU adapters).
    Register(u32, u32),
    /// 64×64 workgroup tiles staged in workgroup memory (GPUs).
    Workgroup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Matmul {
    pub w_dtype: DType,
    pub bias: bool,
    pub act: Act,
    pub residual: Residual,
    pub tiling: Tiling,
    /// Workgroup tiling only: X rows are 16-byte aligned, so X is read as vec4.
    pub x_vec4: bool,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Params {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub batch: u32,
    pub x_off: u32,
    pub x_row: u32,
    pub x_batch: u32,
    pub w_off: u32,
    /// Stride between the k rows of W (`[K, N]` layout): N, or more for a column block.
    pub w_row: u32,
    pub w_batch: u32,
    pub y_off: u32,
    pub y_row: u32,
    pub y_batch: u32,
    pub r_off: u32,
    pub r_row: u32,
    pub g_off: u32,
    pub g_row: u32,
    pub rows_per_gate: u32,
    pub _pad: [u32; 2],
}

impl Params {
    /// Contiguous `X [M, K]`, shared `W [K, N]`, `Y [M, N]`, residual laid out like Y.
    pub fn dense(m: usize, n: usize, k: usize) -> Params {
        let (m, n, k) = (m as u32, n as u32, k as u32);
        Params { m, n, k, batch: 1, x_row: k, w_row: n, y_row: n, r_row: n, rows_per_gate: 1, ..Default::default() }
    }
}

/// A PyTorch `[out, in]` weight as the kernels store it, `[in, out]`.
pub fn transpose(w: &[f32], out: usize, inp: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for o in 0..out {
        for i in 0..inp {
            t[i * out + o] = w[o * inp + i];
        }
    }
    t
}

impl Matmul {
    /// The register-blocked variant (the portable default).
    pub fn new(w_dtype: DType, bias: bool, act: Act, residual: Residual) -> Matmul {
        Matmul { w_dtype, bias, act, residual, tiling: Tiling::Register(4, 4), x_vec4: false }
    }

    /// The variant for this adapter and call: software adapters run register blocking
    /// (16×32 outputs per invocation for large products: 32 GFLOP/s at 1024³ on lavapipe
    /// against 21 for 8×16 and 6 for 4×4; smaller products take the largest tile that
    /// still spreads over several cores), GPUs
    /// workgroup tiles (with vec4 X loads when the view allows).
    pub fn for_device(caps: &Capabilities, w_dtype: DType, bias: bool, act: Act, residual: Residual, p: &Params) -> Matmul {
        let mut k = Matmul::new(w_dtype, bias, act, residual);
        // The largest register tile that still leaves work for several cores.
        let groups = |tm: u32, tn: u32| p.m.div_ceil(8 * tm) * p.n.div_ceil(8 * tn) * p.batch;
        if let Some(&(tm, tn)) = [(16, 32), (8, 16)].iter().find(|&&(tm, tn)| groups(tm, tn) >= 4) {
            k.tiling = Tiling::Register(tm, tn);
        }
        if caps.device_type == DeviceKind::Gpu {
            k.tiling = Tiling::Workgroup;
            k.x_vec4 = [p.x_off, p.x_row, p.x_batch, p.k].iter().all(|v| v % 4 == 0);
        }
        k
    }

    /// Outputs per invocation of the register tilings.
    fn register_tile(&self) -> (u32, u32) {
        match self.tiling {
            Tiling::Register(tm, tn) => (tm, tn),
            _ => (1, 1),
        }
    }

    /// Outputs (rows, cols) one workgroup covers.
    fn coverage(&self) -> (u32, u32) {
        match self.tiling {
            Tiling::Naive => (8, 8),
            Tiling::Register(tm, tn) => (8 * tm, 8 * tn),
            Tiling::Workgroup => (64, 64),
        }
    }

    fn slots(&self) -> (u32, u32, u32, u32) {
        let mut next = 3;
        let mut take = |on: bool| {
            let b = next;
            next += u32::from(on);
            b
        };
        let bias = take(self.bias);
        let res = take(self.residual != Residual::None);
        let gate = take(self.residual == Residual::Gated);
        (bias, res, gate, next)
    }
}

impl fmt::Display for Matmul {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.tiling {
            Tiling::Naive => write!(f, "matmul_f32x{}_naive", self.w_dtype)?,
            Tiling::Register(tm, tn) => write!(f, "matmul_f32x{}_r{tm}x{tn}", self.w_dtype)?,
            Tiling::Workgroup => write!(f, "matmul_f32x{}_t64x64x16_r4x4{}", self.w_dtype, if self.x_vec4 { "_v4" } else { "" })?,
        }
        if self.bias {
            f.write_str("_bias")?;
        }
        match self.act {
            Act::None => {}
            Act::Gelu => f.write_str("_gelu")?,
            Act::Silu => f.write_str("_silu")?,
        }
        match self.residual {
            Residual::None => Ok(()),
            Residual::Add => f.write_str("_res"),
            Residual::Gated => f.write_str("_gated"),
        }
    }
}

impl Kernel for Matmul {
    type Params = Params;

    fn wgsl(&self) -> String {
        let (b_bias, b_res, b_gate, b_y) = self.slots();
        let d = Defines::new()
            .flag("W_F32", self.w_dtype == DType::F32)
            .flag("W_BF16", self.w_dtype == DType::BF16)
            .flag("BIAS", self.bias)
            .flag("GELU", self.act == Act::Gelu)
            .flag("SILU", self.act == Act::Silu)
            .flag("RESIDUAL", self.residual != Residual::None)
            .flag("GATED", self.residual == Residual::Gated)
            .flag("TILED", self.tiling == Tiling::Workgroup)
            .flag("X_VEC4", self.x_vec4)
            .set("TM", self.register_tile().0)
            .set("TN", self.register_tile().1)
            .set("B_BIAS", b_bias)
            .set("B_RES", b_res)
            .set("B_GATE", b_gate)
            .set("B_Y", b_y);
        expand("matmul.wgsl", &d)
    }

    fn bindings(&self) -> Vec<Access> {
        let (_, _, _, b_y) = self.slots();
        let mut v = vec![Access::Read; b_y as usize - 1];
        v.push(Access::ReadWrite);
        v
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        let (rows, cols) = self.coverage();
        [p.n.div_ceil(cols), p.m.div_ceil(rows), p.batch]
    }
}

/// Every tiling the models can select.
pub const VARIANTS: [(Tiling, bool); 6] = [
    (Tiling::Naive, false),
    (Tiling::Register(4, 4), false),
    (Tiling::Register(8, 16), false),
    (Tiling::Register(16, 32), false),
    (Tiling::Workgroup, false),
    (Tiling::Workgroup, true),
];

pub fn variants() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for w in [DType::F32, DType::F16, DType::BF16] {
        for bias in [false, true] {
            for act in [Act::None, Act::Gelu, Act::Silu] {
                for res in [Residual::None, Residual::Add, Residual::Gated] {
                    for (tiling, x_vec4) in VARIANTS {
                        let k = Matmul { tiling, x_vec4, ..Matmul::new(w, bias, act, res) };
                        v.push((k.to_string(), k.wgsl()));
                    }
                }
            }
        }
    }
    v
}

/// Host tensors of one reference call; `w` holds the values the GPU sees (dtype-rounded).
pub struct RefArgs<'a> {
    pub x: &'a [f32],
    pub w: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub res: Option<&'a [f32]>,
    pub gate: Option<&'a [f32]>,
}

/// CPU reference (f64 accumulation) of one call, writing into `y` as the kernel would.
pub fn reference(k: &Matmul, p: &Params, a: &RefArgs, y: &mut [f32]) {
    for b in 0..p.batch as usize {
        for m in 0..p.m as usize {
            for n in 0..p.n as usize {
                let xo = p.x_off as usize + b * p.x_batch as usize + m * p.x_row as usize;
                let wo = p.w_off as usize + b * p.w_batch as usize + n;
                let mut v: f64 = (0..p.k as usize).map(|i| a.x[xo + i] as f64 * a.w[wo + i * p.w_row as usize] as f64).sum();
                if let Some(bias) = a.bias {
                    v += bias[n] as f64;
                }
                v = match k.act {
                    Act::None => v,
                    Act::Gelu => 0.5 * v * (1.0 + (0.7978845608028654 * (v + 0.044715 * v * v * v)).tanh()),
                    Act::Silu => v / (1.0 + (-v).exp()),
                };
                if let Some(g) = a.gate {
                    v *= g[p.g_off as usize + (m / p.rows_per_gate as usize) * p.g_row as usize + n] as f64;
                }
                if let Some(r) = a.res {
                    v += r[p.r_off as usize + m * p.r_row as usize + n] as f64;
                }
                y[p.y_off as usize + b * p.y_batch as usize + m * p.y_row as usize + n] = v as f32;
            }
        }
    }
}
