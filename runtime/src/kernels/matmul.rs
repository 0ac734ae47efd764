//! `shaders/matmul.wgsl`: batched `Y = epilogue(X·W + b)` with f32/f16/bf16 weights
//! stored transposed (`[in, out]`, see [`transpose`]).
//!
//! A weight too large for one storage binding is stored as column blocks, each its
//! own `[K, Nb]` tensor ([`column_blocks`]), and run as one dispatch per block into
//! the matching columns of one Y ([`Params::column_block`]). An activation too large
//! for one binding is likewise made in row blocks ([`Params::row_block`]).
use crate::device::{Capabilities, DeviceKind};
use crate::error::{Result, RuntimeError};
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use crate::tensor::DType;
use std::fmt;
use std::ops::Range;

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

crate::params! {
    #[derive(Default)]
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
        /// Element offset into the bias (a column block reads its slice of a full bias).
        pub b_off: u32,
        /// Row of the gate's row numbering at which this call's first output row sits
        /// (a row block of a longer product, see [`Params::row_block`]).
        pub gate_row0: u32,
    }
}

impl Params {
    /// Contiguous `X [M, K]`, shared `W [K, N]`, `Y [M, N]`, residual laid out like Y.
    pub fn dense(m: usize, n: usize, k: usize) -> Params {
        let (m, n, k) = (m as u32, n as u32, k as u32);
        Params { m, n, k, batch: 1, x_row: k, w_row: n, y_row: n, r_row: n, rows_per_gate: 1, ..Default::default() }
    }

    /// This call restricted to output columns `cols`, whose weight is its own contiguous
    /// `[K, cols.len()]` tensor (`[batch, K, cols.len()]` when weights are per batch).
    /// Y, residual, gate and bias stay the full tensors, entered at column `cols.start`.
    pub fn column_block(&self, cols: Range<usize>) -> Params {
        let (start, width) = (cols.start as u32, cols.len() as u32);
        Params {
            n: width,
            w_off: 0,
            w_row: width,
            w_batch: if self.w_batch == 0 { 0 } else { self.k * width },
            y_off: self.y_off + start,
            r_off: self.r_off + start,
            g_off: self.g_off + start,
            b_off: self.b_off + start,
            ..*self
        }
    }

    /// This call restricted to `rows` rows of the product: X is entered at row `x_row0`
    /// (a whole input, or 0 for an input that is itself a row block), Y, residual and
    /// gate at row `y_row0` (likewise). Non-batched calls only.
    pub fn row_block(&self, rows: usize, x_row0: usize, y_row0: usize) -> Params {
        let (x0, y0) = (x_row0 as u32, y_row0 as u32);
        debug_assert_eq!(self.batch, 1, "row blocks of a batched matmul");
        Params {
            m: rows as u32,
            x_off: self.x_off + x0 * self.x_row,
            y_off: self.y_off + y0 * self.y_row,
            r_off: self.r_off + y0 * self.r_row,
            gate_row0: self.gate_row0 + y0,
            ..*self
        }
    }
}

/// Column ranges splitting a `[K, N]` weight (times `batch` copies) so each block fits
/// a storage binding of `max_binding` bytes. Blocks are multiples of 256 columns (the
/// widest register tile) so only the last one has a ragged edge.
pub fn column_blocks(n: usize, k: usize, batch: usize, dtype: DType, max_binding: u64) -> Result<Vec<Range<usize>>> {
    const ALIGN: usize = 256;
    let column_bytes = (k * batch.max(1) * dtype.size()) as u64;
    if dtype.storage_bytes(n * k * batch.max(1)) <= max_binding {
        return Ok(std::iter::once(0..n).collect());
    }
    let width = (max_binding / column_bytes.max(1)) as usize / ALIGN * ALIGN;
    if width == 0 {
        return Err(RuntimeError::LimitExceeded {
            what: format!("{ALIGN} columns of a [{k}, {n}] {dtype} weight"),
            requested: column_bytes * ALIGN as u64,
            limit: max_binding,
            hint: "K is too large to split by columns; split the reduction instead".into(),
        });
    }
    Ok((0..n).step_by(width).map(|s| s..(s + width).min(n)).collect())
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

    /// One k step of the register tiling as straight-line WGSL: TM X loads, TN W loads,
    /// TM·TN FMAs on constant indices (see the K loop in matmul.wgsl for why not loops).
    fn tile_step(&self) -> String {
        let (tm, tn) = self.register_tile();
        let mut s: String = (0..tm).map(|i| format!("        let x{i} = x[xr[{i}] + kk];\n")).collect();
        for j in 0..tn {
            s += &format!("        let w{j} = load_w(wc[{j}] + wk);\n");
            s.extend((0..tm).map(|i| format!("        acc[{i}][{j}] = fma(x{i}, w{j}, acc[{i}][{j}]);\n")));
        }
        s
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

    /// Every operand's last index from the offsets, strides and sizes in `p`.
    fn check(&self, p: &Params, operands: &[(DType, usize)]) -> Result<()> {
        let fail = |message: String| Err(RuntimeError::Validation { label: self.to_string(), message });
        let mut names = vec![("X", DType::F32), ("W", self.w_dtype)];
        names.extend(self.bias.then_some(("bias", DType::F32)));
        names.extend((self.residual != Residual::None).then_some(("residual", DType::F32)));
        names.extend((self.residual == Residual::Gated).then_some(("gate", DType::F32)));
        names.push(("Y", DType::F32));
        if operands.len() != names.len() {
            return fail(format!("{} operands given, the kernel binds {}", operands.len(), names.len()));
        }
        if self.residual == Residual::Gated && p.rows_per_gate == 0 {
            return fail("rows_per_gate is 0".into());
        }
        if self.tiling != Tiling::Workgroup && p.k > MAX_K {
            return fail(format!("k = {} exceeds {MAX_K}: llvmpipe leaves loops after 65535 iterations per invocation", p.k));
        }
        if self.x_vec4 && [p.x_off, p.x_row, p.x_batch, p.k].iter().any(|v| v % 4 != 0) {
            return fail(format!("vec4 X loads need x_off, x_row, x_batch and k divisible by 4: {p:?}"));
        }
        let (m, n, k, batch) = (p.m as u64, p.n as u64, p.k as u64, p.batch as u64);
        // Last element each operand is read or written at, None when nothing is touched.
        let last = |touched: bool, off: u32, terms: &[(u64, u32)]| {
            touched.then(|| off as u64 + terms.iter().map(|&(i, stride)| i.saturating_sub(1) * stride as u64).sum::<u64>())
        };
        let out = m > 0 && n > 0 && batch > 0;
        let gate_rows = (p.gate_row0 as u64 + m).div_ceil(p.rows_per_gate.max(1) as u64);
        let mut reach = vec![
            last(out && k > 0, p.x_off, &[(batch, p.x_batch), (m, p.x_row), (k, 1)]),
            last(out && k > 0, p.w_off, &[(batch, p.w_batch), (k, p.w_row), (n, 1)]),
        ];
        reach.extend(self.bias.then(|| last(out, p.b_off, &[(n, 1)])));
        reach.extend((self.residual != Residual::None).then(|| last(out, p.r_off, &[(m, p.r_row), (n, 1)])));
        reach.extend((self.residual == Residual::Gated).then(|| last(out, p.g_off, &[(gate_rows, p.g_row), (n, 1)])));
        reach.push(last(out, p.y_off, &[(batch, p.y_batch), (m, p.y_row), (n, 1)]));
        for ((&(name, want), &(dtype, len)), reach) in names.iter().zip(operands).zip(reach) {
            if dtype != want {
                return fail(format!("{name} is {dtype}, the kernel reads {want}"));
            }
            if let Some(i) = reach.filter(|&i| i >= len as u64) {
                return fail(format!("{name} has {len} elements but {p:?} reaches element {i}"));
            }
        }
        Ok(())
    }

    fn wgsl(&self) -> String {
        let (b_bias, b_res, b_gate, b_y) = self.slots();
        let d = Defines::new()
            .flag("W_F32", self.w_dtype == DType::F32)
            .flag("W_BF16", self.w_dtype == DType::BF16)
            .set("B_W", 2)
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
            .set("B_Y", b_y)
            .set("TILE_STEP", self.tile_step());
        expand("matmul.wgsl", &d)
    }

    fn bindings(&self) -> Vec<Access> {
        let (_, _, _, b_y) = self.slots();
        let mut v = vec![Access::Read; b_y as usize - 1];
        v.push(Access::ReadWrite);
        v
    }

    fn flops(&self, p: &Params, _operands: &[(DType, usize)]) -> f64 {
        2.0 * p.m as f64 * p.n as f64 * p.k as f64 * p.batch as f64
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        let (rows, cols) = self.coverage();
        [p.n.div_ceil(cols), p.m.div_ceil(rows), p.batch]
    }
}

/// Longest reduction of the naive and register tilings, which run one loop iteration
/// per k: llvmpipe (lavapipe) silently leaves every loop of an invocation once 65535
/// iterations have run in total, and the tile's own setup and store loops take a few hundred.
pub const MAX_K: u32 = 65_535 - 1024;

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
                    v += bias[p.b_off as usize + n] as f64;
                }
                v = match k.act {
                    Act::None => v,
                    Act::Gelu => super::gelu_tanh(v),
                    Act::Silu => v / (1.0 + (-v).exp()),
                };
                if let Some(g) = a.gate {
                    v *= g[p.g_off as usize + ((p.gate_row0 as usize + m) / p.rows_per_gate as usize) * p.g_row as usize + n] as f64;
                }
                if let Some(r) = a.res {
                    v += r[p.r_off as usize + m * p.r_row as usize + n] as f64;
                }
                y[p.y_off as usize + b * p.y_batch as usize + m * p.y_row as usize + n] = v as f32;
            }
        }
    }
}
