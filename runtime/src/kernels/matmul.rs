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
    /// Blocks staged in workgroup memory (GPUs).
    Workgroup(Block),
    /// Matrix units through `wgpu_cooperative_matrix` (GPUs that offer them).
    Coop(Coop),
}

/// A block of the workgroup tiling: a workgroup of (bn/tn)·(bm/tm) invocations computes
/// bm×bn outputs, tm×tn per invocation, staging X and W bk deep in workgroup memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
}

impl Block {
    /// Large products: 8×8 outputs per invocation, 64 FMAs per 4 vec4 reads of the tiles.
    pub const LARGE: Block = Block { bm: 128, bn: 128, bk: 16, tm: 8, tn: 8 };
    /// [`Block::LARGE`] within WebGPU's guaranteed 16 KiB of workgroup memory.
    pub const LARGE_SHALLOW: Block = Block { bk: 8, ..Block::LARGE };
    /// Products with few rows or too few large blocks to fill a GPU.
    pub const SMALL: Block = Block { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };

    /// Workgroup memory: the transposed X tile with one vec4 of padding per k row, and W.
    pub fn workgroup_bytes(&self) -> u32 {
        4 * self.bk * (self.bm + 4 + self.bn)
    }

    /// The block for `p` on an adapter with `workgroup_storage` bytes of workgroup memory:
    /// 128×128 where there are at least 128 rows and 256 such blocks (two per compute unit
    /// on the largest GPUs, so none idles), else 64×64 — the text encoder's 512-token
    /// projections, the DiT at one frame, per-head products.
    pub fn for_shape(workgroup_storage: u32, p: &Params) -> Block {
        let large = if Block::LARGE.workgroup_bytes() <= workgroup_storage { Block::LARGE } else { Block::LARGE_SHALLOW };
        let blocks = p.m.div_ceil(large.bm) * p.n.div_ceil(large.bn) * p.batch;
        if p.m >= large.bm && blocks >= 256 {
            large
        } else {
            Block::SMALL
        }
    }

    fn invocations(&self) -> u32 {
        (self.bm / self.tm) * (self.bn / self.tn)
    }
}

/// The cooperative-matrix tiling (see matmul.wgsl): a 64×64 block of `size`×`size`
/// fragments, four subgroups of up to `subgroup_max` invocations (32 or 64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Coop {
    pub size: u32,
    pub subgroup_max: u32,
}

impl Coop {
    /// Rows and columns of a workgroup's block.
    pub const BLOCK: u32 = 64;

    /// The tiling for this adapter, where it opened a cooperative-matrix configuration
    /// (and f16 and subgroups, which the shader uses too). The workgroup holds four of
    /// the adapter's largest subgroups, counted as at least 32 so that two variants
    /// cover every adapter (smaller subgroups make more, idle, subgroups); none past 64
    /// (a workgroup of 256 invocations).
    pub fn for_device(caps: &Capabilities) -> Option<Coop> {
        let c = caps.coop_matrix?;
        let subgroup_max = caps.subgroup_max.max(32);
        let fits = caps.subgroup_max.is_power_of_two() && subgroup_max <= 64;
        let k = Coop { size: c.size, subgroup_max };
        (caps.f16 && caps.subgroups && fits && k.workgroup_bytes() <= caps.workgroup_storage).then_some(k)
    }

    /// f16 X and W tiles (padded rows of 40 and 72) and five fragment slots of f32.
    pub fn workgroup_bytes(&self) -> u32 {
        2 * (64 * 40 + 32 * 72) + 4 * 5 * self.size * self.size
    }

    /// Accumulator fragments per subgroup side (a 32×32 region).
    fn frags(&self) -> u32 {
        32 / self.size
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Matmul {
    pub w_dtype: DType,
    pub bias: bool,
    pub act: Act,
    pub residual: Residual,
    pub tiling: Tiling,
    /// Workgroup and cooperative tilings only: X rows are 16-byte aligned, so X is read as vec4.
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
pub fn transpose<T: Copy + Default>(w: &[T], out: usize, inp: usize) -> Vec<T> {
    // In 64 × 64 tiles: a row-by-row walk writes with a stride of `out` elements, a
    // cache miss per element on umT5-XXL's 4096 × 10240 matrices.
    const TILE: usize = 64;
    let mut t = vec![T::default(); w.len()];
    for o0 in (0..out).step_by(TILE) {
        for i0 in (0..inp).step_by(TILE) {
            for o in o0..(o0 + TILE).min(out) {
                for i in i0..(i0 + TILE).min(inp) {
                    t[i * out + o] = w[o * inp + i];
                }
            }
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
    /// still spreads over several cores); GPUs the matrix units where the device was
    /// opened with them and the product has a block of rows, else workgroup blocks
    /// ([`Block::for_shape`]); both with vec4 X loads where the view allows.
    pub fn for_device(caps: &Capabilities, w_dtype: DType, bias: bool, act: Act, residual: Residual, p: &Params) -> Matmul {
        let mut k = Matmul::new(w_dtype, bias, act, residual);
        // The largest register tile that still leaves work for several cores.
        let groups = |tm: u32, tn: u32| p.m.div_ceil(8 * tm) * p.n.div_ceil(8 * tn) * p.batch;
        if let Some(&(tm, tn)) = [(16, 32), (8, 16)].iter().find(|&&(tm, tn)| groups(tm, tn) >= 4) {
            k.tiling = Tiling::Register(tm, tn);
        }
        if caps.device_type == DeviceKind::Gpu {
            k.tiling = match Coop::for_device(caps) {
                Some(c) if p.m >= Coop::BLOCK => Tiling::Coop(c),
                _ => Tiling::Workgroup(Block::for_shape(caps.workgroup_storage, p)),
            };
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
    fn register_step(&self) -> String {
        let (tm, tn) = self.register_tile();
        let mut s: String = (0..tm).map(|i| format!("        let x{i} = x[xr[{i}] + kk];\n")).collect();
        for j in 0..tn {
            s += &format!("        let w{j} = load_w(wc[{j}] + wk);\n");
            s.extend((0..tm).map(|i| format!("        acc[{i}][{j}] = fma(x{i}, w{j}, acc[{i}][{j}]);\n")));
        }
        s
    }

    /// The BK steps of a workgroup block between two barriers as straight-line WGSL: per
    /// k, the invocation's rows as TM/4 vec4s of xs and its columns as TN/4 vec4s of ws,
    /// then TM·TN/4 vec4 FMAs into acc.
    fn block_step(b: &Block) -> String {
        let (wx, wy, tg) = (b.bn / b.tn, b.bm / b.tm, b.tn / 4);
        let mut s = String::new();
        for kk in 0..b.bk {
            s += "        {\n";
            s.extend((0..b.tm / 4).map(|i| format!("            let a{i} = xs[{kk}][ty + {}u];\n", i * wy)));
            s.extend((0..tg).map(|j| format!("            let b{j} = ws[{kk}][tx + {}u];\n", j * wx)));
            for r in 0..b.tm {
                let (a, lane) = (r / 4, ["x", "y", "z", "w"][r as usize % 4]);
                for j in 0..tg {
                    let i = r * tg + j;
                    s += &format!("            acc[{i}] = fma(vec4<f32>(a{a}.{lane}), b{j}, acc[{i}]);\n");
                }
            }
            s += "        }\n";
        }
        s
    }

    /// The epilogue of a workgroup block: each row of the invocation, each vec4 of its columns.
    fn block_store(b: &Block) -> String {
        let (wx, wy, tg) = (b.bn / b.tn, b.bm / b.tm, b.tn / 4);
        let mut s = String::new();
        for r in 0..b.tm {
            let row = format!("m_base + 4u * (ty + {}u) + {}u", (r / 4) * wy, r % 4);
            for j in 0..tg {
                s += &format!("    store4(b, {row}, n_base + 4u * (tx + {}u), acc[{}]);\n", j * wx, r * tg + j);
            }
        }
        s
    }

    /// The cooperative tiling's accumulators, one per fragment of the subgroup's region.
    fn coop_acc(c: &Coop) -> String {
        let f = c.frags();
        (0..f * f).map(|i| format!("    var c{}{} = coop_mat{s}x{s}<f32, C>();\n", i / f, i % f, s = c.size)).collect()
    }

    /// One k step of `size` within the staged tiles: the region's row fragments of X and
    /// column fragments of W, loaded row-major (`coopLoadT`) with the padded strides, and
    /// every product. Indices are `let`s of their own.
    fn coop_step(c: &Coop) -> String {
        let (f, n) = (c.frags(), c.size);
        let mut s = String::new();
        for i in 0..f {
            s += &format!("            let ia{i} = (rr + {}u) * XS + kk;\n", i * n);
            s += &format!("            let a{i} = coopLoadT<coop_mat{n}x{n}<f16, A>>(&xh[ia{i}], XS);\n");
        }
        for j in 0..f {
            s += &format!("            let ib{j} = kk * WS + cc + {}u;\n", j * n);
            s += &format!("            let b{j} = coopLoadT<coop_mat{n}x{n}<f16, B>>(&wh[ib{j}], WS);\n");
        }
        for i in 0..f {
            s.extend((0..f).map(|j| format!("            c{i}{j} = coopMultiplyAdd(a{i}, b{j}, c{i}{j});\n")));
        }
        s
    }

    /// The cooperative tiling's epilogue: each fragment through the subgroup's slot of cs.
    /// Barriers around every fragment (not subgroup ones: the store and the reads of
    /// workgroup memory must be ordered for the whole subgroup, which only they promise).
    fn coop_store(c: &Coop) -> String {
        let (f, n) = (c.frags(), c.size);
        let mut s = String::new();
        for i in 0..f {
            for j in 0..f {
                s += &format!("    coopStoreT(c{i}{j}, &cs[slot], S);\n    workgroupBarrier();\n");
                s += &format!(
                    "    if sg < 4u {{\n        drain(b, m_base + rr + {}u, n_base + cc + {}u, slot, lane, sg_size);\n    }}\n",
                    i * n,
                    j * n
                );
                s += "    workgroupBarrier();\n";
            }
        }
        s
    }

    /// Outputs (rows, cols) one workgroup covers.
    fn coverage(&self) -> (u32, u32) {
        match self.tiling {
            Tiling::Naive => (8, 8),
            Tiling::Register(tm, tn) => (8 * tm, 8 * tn),
            Tiling::Workgroup(b) => (b.bm, b.bn),
            Tiling::Coop(_) => (Coop::BLOCK, Coop::BLOCK),
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
        let w = self.w_dtype;
        match self.tiling {
            Tiling::Naive => write!(f, "matmul_f32x{w}_naive")?,
            Tiling::Register(tm, tn) => write!(f, "matmul_f32x{w}_r{tm}x{tn}")?,
            Tiling::Workgroup(b) => write!(f, "matmul_f32x{w}_t{}x{}x{}_r{}x{}", b.bm, b.bn, b.bk, b.tm, b.tn)?,
            Tiling::Coop(c) => write!(f, "matmul_f32x{w}_coop{}_sg{}", c.size, c.subgroup_max)?,
        }
        if self.x_vec4 {
            f.write_str("_v4")?;
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
        let register = matches!(self.tiling, Tiling::Naive | Tiling::Register(..));
        if register && p.k > MAX_K {
            return fail(format!("k = {} exceeds {MAX_K}: llvmpipe leaves loops after 65535 iterations per invocation", p.k));
        }
        if register && self.x_vec4 {
            return fail("vec4 X loads are for the workgroup and cooperative tilings".into());
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
        let mut d = Defines::new()
            .flag("W_F32", self.w_dtype == DType::F32)
            .flag("W_BF16", self.w_dtype == DType::BF16)
            .set("B_W", 2)
            .flag("BIAS", self.bias)
            .flag("GELU", self.act == Act::Gelu)
            .flag("SILU", self.act == Act::Silu)
            .flag("RESIDUAL", self.residual != Residual::None)
            .flag("GATED", self.residual == Residual::Gated)
            .flag("X_VEC4", self.x_vec4)
            .set("B_BIAS", b_bias)
            .set("B_RES", b_res)
            .set("B_GATE", b_gate)
            .set("B_Y", b_y);
        d = match self.tiling {
            Tiling::Naive | Tiling::Register(..) => {
                let (tm, tn) = self.register_tile();
                d.flag("REGISTER", true).set("TM", tm).set("TN", tn).set("TILE_STEP", self.register_step())
            }
            Tiling::Workgroup(b) => {
                // Each staging loop hands every invocation the same number of loads.
                assert!(b.tm % 4 == 0 && b.tn % 4 == 0 && (b.bm * b.bk / 4) % b.invocations() == 0, "{b:?}");
                assert!((b.bk * b.bn) % b.invocations() == 0, "{b:?}");
                d.flag("STAGED", true)
                    .flag("TILED", true)
                    .set("BM", b.bm)
                    .set("BN", b.bn)
                    .set("BK", b.bk)
                    .set("TM", b.tm)
                    .set("TN", b.tn)
                    .set("TILE_STEP", Self::block_step(&b))
                    .set("TILE_STORE", Self::block_store(&b))
            }
            Tiling::Coop(c) => {
                assert!(matches!(c.size, 8 | 16) && matches!(c.subgroup_max, 32 | 64), "{c:?}");
                d.flag("STAGED", true)
                    .flag("COOP", true)
                    .set("S", c.size)
                    .set("SG", c.subgroup_max)
                    .set("COOP_ACC", Self::coop_acc(&c))
                    .set("COOP_STEP", Self::coop_step(&c))
                    .set("COOP_STORE", Self::coop_store(&c))
            }
        };
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
/// iterations have run in total, and the tile's own setup and store loops take a few
/// hundred. The staged tilings run a few iterations per BK-deep step, well inside it.
pub const MAX_K: u32 = 65_535 - 1024;

/// Every tiling the models can select, with and without vec4 X where that applies.
pub fn tilings() -> Vec<(Tiling, bool)> {
    let mut v =
        vec![(Tiling::Naive, false), (Tiling::Register(4, 4), false), (Tiling::Register(8, 16), false), (Tiling::Register(16, 32), false)];
    let staged = [Block::LARGE, Block::LARGE_SHALLOW, Block::SMALL].map(Tiling::Workgroup).into_iter().chain(
        // NVIDIA and AMD (16, subgroups of 32 or 64), Apple (8, reported as 4 to 64), Intel.
        [(16, 32), (16, 64), (8, 32), (8, 64)].map(|(size, subgroup_max)| Tiling::Coop(Coop { size, subgroup_max })),
    );
    for t in staged {
        v.extend([(t, false), (t, true)]);
    }
    v
}

pub fn variants() -> Vec<(String, String)> {
    let tilings = tilings();
    let mut v = Vec::new();
    for w in [DType::F32, DType::F16, DType::BF16] {
        for bias in [false, true] {
            for act in [Act::None, Act::Gelu, Act::Silu] {
                for res in [Residual::None, Residual::Add, Residual::Gated] {
                    for &(tiling, x_vec4) in &tilings {
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
