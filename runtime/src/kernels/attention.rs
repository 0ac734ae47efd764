//! `shaders/attention.wgsl`: online-softmax attention over explicit key ranges, one
//! invocation per query on CPU adapters, flash-attention-2 tiles on GPUs.
use crate::device::{Capabilities, DeviceKind};
use crate::error::{Result, RuntimeError};
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use crate::tensor::DType;
use std::fmt;
use std::fmt::Write as _;

/// Head dims the models use: the full-size DiT 128, umT5 64, the VAE's single head its
/// channel count (384 in the full Wan VAE); the small test configs the others.
pub const HEAD_DIMS: [u32; 6] = [8, 16, 32, 64, 128, 384];

/// How queries are spread over invocations (see the header of attention.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Schedule {
    /// One invocation per (query, head), keys broadcast: CPU adapters.
    PerQuery,
    /// A workgroup per [`Attention::queries`] queries of one head; `keys` K and V rows
    /// staged in workgroup memory at a time and consumed `step` keys per online-softmax
    /// update (`step` divides `keys`).
    Tiled { keys: u32, step: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attention {
    /// Head dim: the size of the register arrays and of the unrolled loops.
    pub head_dim: u32,
    /// With T5's additive relative-position bias: a table `[heads, tq + tk − 1]`
    /// indexed by `j − i + tq − 1` (key minus query), so an L-token encoder binds
    /// H·(2L−1) values per layer instead of an H·L·L score bias.
    pub bias: bool,
    pub schedule: Schedule,
    /// Tiled: K/V tiles held as f16 (needs `shader-f16`), twice the keys per tile.
    pub kv_f16: bool,
    /// Tiled with several lanes per query: partial scores summed by subgroup shuffles,
    /// not through workgroup memory (needs subgroups of at least [`Attention::lanes`]).
    pub subgroups: bool,
}

/// Largest K/V tile: more keys per barrier pair, but more zero-padded rows in the
/// last tile of short ranges (12 sink slots, 16 text tokens).
const MAX_TILE_KEYS: u32 = 64;
/// Keys per online-softmax update: the accumulator is rescaled once per step, so 8
/// keys cost 1/8 multiply per channel and key, with 8 scores in registers.
const STEP_KEYS: u32 = 8;

/// Lanes per query of the tiled schedule: the fewest (a power of two) that leave each
/// ≤ 32 channels of q and of the accumulator, so registers stay small at head dim 128
/// (4 lanes) and 384 (16 lanes of 24).
fn tiled_lanes(head_dim: u32) -> u32 {
    head_dim.div_ceil(32).next_power_of_two()
}

impl Attention {
    /// The per-query schedule.
    pub fn new(head_dim: usize, bias: bool) -> Attention {
        Attention { head_dim: head_dim as u32, bias, schedule: Schedule::PerQuery, kv_f16: false, subgroups: false }
    }

    /// The tiled schedule with the largest K/V tile (≤ 64 keys, halving) whose workgroup
    /// memory fits `workgroup_storage` bytes; None when not even 4 keys fit, or when
    /// the head dim does not split into vec4 chunks over its lanes (4·lanes ∤ head dim;
    /// true of no model's).
    pub fn tiled(head_dim: usize, bias: bool, kv_f16: bool, subgroups: bool, workgroup_storage: u32) -> Option<Attention> {
        let lanes = tiled_lanes(head_dim as u32) as usize;
        if head_dim == 0 || !head_dim.is_multiple_of(4 * lanes) {
            return None;
        }
        std::iter::successors(Some(MAX_TILE_KEYS), |&k| (k > 4).then_some(k / 2))
            .map(|keys| Attention {
                schedule: Schedule::Tiled { keys, step: keys.min(STEP_KEYS) },
                kv_f16,
                subgroups: subgroups && lanes > 1,
                ..Attention::new(head_dim, bias)
            })
            .find(|a| a.workgroup_bytes() <= workgroup_storage)
    }

    /// The variant for this adapter: per-query on CPU adapters (barriers cost more than
    /// they save there, and broadcast keys are free), tiles on GPUs, reduced in subgroups
    /// when they hold a query's lanes. K/V tiles are f16 when the adapter has shader-f16
    /// and `precision`, the dtype of the weights that made K and V, is 16-bit: those
    /// already round K and V as coarsely (bf16 to 2⁻⁹), while on the f32 reference path
    /// f16 tiles would move the tiny DiT's output by 1.8e-3 × std (its parity bound is
    /// 1e-3). Falls back to per-query where [`Attention::tiled`] has no tile: never for
    /// the models' head dims with WebGPU's 16 KiB (384 with f32 tiles fits 4 keys exactly).
    pub fn for_device(caps: &Capabilities, head_dim: usize, bias: bool, precision: DType) -> Attention {
        if caps.device_type == DeviceKind::Cpu {
            return Attention::new(head_dim, bias);
        }
        let kv_f16 = caps.f16 && precision != DType::F32;
        let subgroups = caps.subgroups && caps.subgroup_min >= tiled_lanes(head_dim as u32);
        Attention::tiled(head_dim, bias, kv_f16, subgroups, caps.workgroup_storage).unwrap_or(Attention::new(head_dim, bias))
    }

    /// Invocations sharing one query.
    pub fn lanes(&self) -> u32 {
        match self.schedule {
            Schedule::PerQuery => 1,
            Schedule::Tiled { .. } => tiled_lanes(self.head_dim),
        }
    }

    /// Invocations per workgroup: 64 queries' lanes, at most 256 (WebGPU's guaranteed limit).
    fn threads(&self) -> u32 {
        (64 * self.lanes()).min(256)
    }

    /// Queries per workgroup (a divisor of 64, so a workgroup's queries share one range list).
    pub fn queries(&self) -> u32 {
        self.threads() / self.lanes()
    }

    /// Bytes of workgroup memory: the K and V tiles, plus one step of partial scores
    /// per invocation when lanes are summed without subgroups.
    pub fn workgroup_bytes(&self) -> u32 {
        match self.schedule {
            Schedule::PerQuery => 0,
            Schedule::Tiled { keys, step } => {
                let tiles = 2 * keys * self.head_dim * if self.kv_f16 { 2 } else { 4 };
                tiles + if self.reduces_in_workgroup() { 4 * step * self.threads() } else { 0 }
            }
        }
    }

    fn reduces_in_workgroup(&self) -> bool {
        self.lanes() > 1 && !self.subgroups
    }

    /// Whether an adapter with `caps` can run this variant (f16, subgroup size, memory).
    pub fn runs_on(&self, caps: &Capabilities) -> bool {
        (!self.kv_f16 || caps.f16)
            && (!self.subgroups || (caps.subgroups && caps.subgroup_min >= self.lanes()))
            && self.workgroup_bytes() <= caps.workgroup_storage
    }

    /// One step of `step` keys as straight-line WGSL (see the header of attention.wgsl):
    /// partial dots over the lane's chunks, the sum over lanes, masking and bias, the
    /// online-softmax update and the value rows.
    fn step_wgsl(&self, step: u32) -> String {
        let (s, c4) = (self.lanes(), self.head_dim / 4 / self.lanes());
        let keys = 0..step;
        let mut w = String::new();
        for r in keys.clone() {
            let dots: Vec<String> = (0..c4).map(|i| format!("dot(qv[{i}], key(j{r}, lane + {}u))", s * i)).collect();
            let _ = writeln!(w, "let j{r} = jj + {r}u;\nvar s{r} = {};", dots.join(" + "));
        }
        if self.subgroups {
            for r in keys.clone() {
                for off in std::iter::successors(Some(1), |o| Some(o * 2)).take_while(|&o| o < s) {
                    let _ = writeln!(w, "s{r} += subgroupShuffleXor(s{r}, {off}u);");
                }
            }
        } else if s > 1 {
            for r in keys.clone() {
                let _ = writeln!(w, "part[{r}u * WG + t] = s{r};");
            }
            w += "workgroupBarrier();\n";
            for r in keys.clone() {
                let terms: Vec<String> = (0..s).map(|u| format!("part[{r}u * WG + t - lane + {u}u]")).collect();
                let _ = writeln!(w, "s{r} = {};", terms.join(" + "));
            }
            // The next step overwrites `part`.
            w += "workgroupBarrier();\n";
        }
        for r in keys.clone() {
            let _ =
                writeln!(w, "let ok{r} = j{r} < n;\ns{r} = select(NEG, s{r} + score_bias(h, min(tile + j{r}, span.y - 1u), qc), ok{r});");
        }
        let max = keys.clone().fold("m".to_string(), |acc, r| format!("max({acc}, s{r})"));
        let _ = writeln!(w, "let m_new = {max};\nlet corr = exp(m - m_new);\nm = m_new;");
        for r in keys.clone() {
            let _ = writeln!(w, "let w{r} = select(0.0, exp(s{r} - m_new), ok{r});");
        }
        let weights: Vec<String> = keys.clone().map(|r| format!("w{r}")).collect();
        let _ = writeln!(w, "l = l * corr + {};", weights.join(" + "));
        for i in 0..c4 {
            let terms: Vec<String> = keys.clone().map(|r| format!(" + w{r} * value(j{r}, lane + {}u)", s * i)).collect();
            let _ = writeln!(w, "acc[{i}] = acc[{i}] * corr{};", terms.concat());
        }
        w.lines().map(|l| format!("                {l}")).collect::<Vec<_>>().join("\n")
    }
}

crate::params! {
    #[derive(Default)]
    pub struct Params {
        pub tq: u32,
        pub heads: u32,
        pub d: u32,
        /// Ranges per list; the ranges tensor holds `ceil(tq / q_block)` lists.
        pub n_ranges: u32,
        /// Queries sharing one list: a multiple of 64 (the workgroup), or ≥ tq for one list.
        pub q_block: u32,
        pub scale: f32,
        pub q_off: u32,
        pub q_row: u32,
        pub k_off: u32,
        pub k_row: u32,
        pub v_off: u32,
        pub v_row: u32,
        pub o_off: u32,
        pub o_row: u32,
        /// Key rows the bias table spans: each head's table has `tq + tk − 1` entries.
        pub tk: u32,
        pub _pad: u32,
    }
}

impl Params {
    /// Contiguous `[t, heads, d]` q/k/v/o, one range list for every query.
    pub fn dense(tq: usize, heads: usize, d: usize, n_ranges: usize, scale: f32) -> Params {
        let row = (heads * d) as u32;
        Params {
            tq: tq as u32,
            heads: heads as u32,
            d: d as u32,
            n_ranges: n_ranges as u32,
            q_block: tq.max(1).next_multiple_of(64) as u32,
            scale,
            q_row: row,
            k_row: row,
            v_row: row,
            o_row: row,
            ..Default::default()
        }
    }
}

impl fmt::Display for Attention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attention_d{}", self.head_dim)?;
        if let Schedule::Tiled { keys, step } = self.schedule {
            write!(f, "_q{}x{keys}_l{}_s{step}_{}", self.queries(), self.lanes(), if self.kv_f16 { "f16" } else { "f32" })?;
            if self.subgroups {
                f.write_str("_sg")?;
            }
        }
        f.write_str(if self.bias { "_bias" } else { "" })
    }
}

impl Kernel for Attention {
    type Params = Params;

    /// Operand dtypes and counts, the q/o/bias extents and the range lists' length. Key
    /// rows come from the ranges' contents, which the host writes per run, so k and v
    /// are not bounded here.
    fn check(&self, p: &Params, operands: &[(DType, usize)]) -> Result<()> {
        let fail = |message: String| Err(RuntimeError::Validation { label: self.to_string(), message });
        if p.d != self.head_dim {
            return fail(format!("d = {} but the kernel is built for head dim {}", p.d, self.head_dim));
        }
        if p.q_block == 0 || (!p.q_block.is_multiple_of(64) && p.q_block < p.tq) {
            return fail(format!("q_block = {} must be a multiple of 64 or cover all {} queries", p.q_block, p.tq));
        }
        let (tq, d, heads) = (p.tq as u64, p.d as u64, p.heads as u64);
        let touched = tq > 0 && heads > 0;
        // Elements each operand must hold (None: not bounded here).
        let rows = |off: u32, row: u32| touched.then(|| off as u64 + (tq - 1) * row as u64 + heads * d);
        let mut operand = vec![
            ("q", DType::F32, rows(p.q_off, p.q_row)),
            ("k", DType::F32, None),
            ("v", DType::F32, None),
            ("ranges", DType::U32, touched.then(|| 2 * tq.div_ceil(p.q_block as u64) * p.n_ranges as u64)),
        ];
        if self.bias {
            operand.push(("bias", DType::F32, touched.then(|| heads * (tq + p.tk as u64).saturating_sub(1))));
        }
        operand.push(("o", DType::F32, rows(p.o_off, p.o_row)));
        if operands.len() != operand.len() {
            return fail(format!("{} operands given, the kernel binds {}", operands.len(), operand.len()));
        }
        for (&(name, want, need), &(dtype, len)) in operand.iter().zip(operands) {
            if dtype != want {
                return fail(format!("{name} is {dtype}, the kernel reads {want}"));
            }
            if let Some(n) = need.filter(|&n| n > len as u64) {
                return fail(format!("{name} has {len} elements but {p:?} needs {n}"));
            }
        }
        if self.bias && p.tk == 0 {
            return fail("the bias table needs tk ≥ 1".into());
        }
        Ok(())
    }

    fn wgsl(&self) -> String {
        let mut d = Defines::new().set("HD", self.head_dim).flag("BIAS", self.bias);
        if let Schedule::Tiled { keys, step } = self.schedule {
            d = d
                .flag("TILED", true)
                .flag("KV_F16", self.kv_f16)
                .flag("SUBGROUPS", self.subgroups)
                .flag("WG_REDUCE", self.reduces_in_workgroup())
                .set("KV", if self.kv_f16 { "f16" } else { "f32" })
                .set("LANES", self.lanes())
                .set("WG", self.threads())
                .set("BK", keys)
                .set("STEP_KEYS", step)
                .set("STEP", self.step_wgsl(step));
        }
        expand("attention.wgsl", &d)
    }

    fn bindings(&self) -> Vec<Access> {
        let mut v = vec![Access::Read; if self.bias { 5 } else { 4 }];
        v.push(Access::ReadWrite);
        v
    }

    /// QKᵀ and P·V, two FMAs per (query, key, channel). The keys a query sees live in
    /// the range lists, a tensor the host rewrites; they are counted as the K operand's
    /// rows from `k_off`: exact once a sliding window is full (and for the text and VAE
    /// calls), an upper bound before.
    fn flops(&self, p: &Params, operands: &[(DType, usize)]) -> f64 {
        let keys = operands.get(1).map_or(0, |&(_, len)| len.saturating_sub(p.k_off as usize).div_ceil(p.k_row.max(1) as usize));
        4.0 * p.tq as f64 * p.heads as f64 * p.d as f64 * keys as f64
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        [p.tq.div_ceil(self.queries()), p.heads, 1]
    }
}

/// Every variant [`Attention::for_device`] picks for the models' head dims on CPU
/// adapters and on GPUs with or without f16 and subgroups, with WebGPU's 16 KiB of
/// workgroup memory, lavapipe's 32 KiB or a discrete GPU's 64 KiB, for f32 and 16-bit
/// weights.
pub fn variants() -> Vec<(String, String)> {
    let mut kernels = std::collections::BTreeMap::new();
    for d in HEAD_DIMS.map(|d| d as usize) {
        for bias in [false, true] {
            kernels.insert(Attention::new(d, bias).to_string(), Attention::new(d, bias));
            for f16 in [false, true] {
                for subgroups in [false, true] {
                    for workgroup_storage in [16384, 32768, 65536] {
                        let (subgroup_min, subgroup_max) = if subgroups { (32, 32) } else { (0, 0) };
                        let base = Capabilities::baseline(DeviceKind::Gpu);
                        let caps = Capabilities { f16, subgroups, subgroup_min, subgroup_max, workgroup_storage, ..base };
                        for precision in [DType::F32, DType::BF16] {
                            let k = Attention::for_device(&caps, d, bias, precision);
                            kernels.insert(k.to_string(), k);
                        }
                    }
                }
            }
        }
    }
    kernels.into_iter().map(|(label, k)| (label, k.wgsl())).collect()
}

/// Entries per head of the relative-position bias table.
pub fn bias_len(tq: usize, tk: usize) -> usize {
    tq + tk - 1
}

/// Dense f64 reference: a full masked score matrix built from the range lists.
pub fn reference(p: &Params, q: &[f32], k: &[f32], v: &[f32], ranges: &[[u32; 2]], bias: Option<&[f32]>, o: &mut [f32]) {
    let d = p.d as usize;
    for qi in 0..p.tq as usize {
        let list = &ranges[(qi / p.q_block as usize) * p.n_ranges as usize..][..p.n_ranges as usize];
        let keys: Vec<usize> = list.iter().flat_map(|r| r[0] as usize..r[1] as usize).collect();
        for h in 0..p.heads as usize {
            let qb = p.q_off as usize + qi * p.q_row as usize + h * d;
            let scores: Vec<f64> = keys
                .iter()
                .map(|&j| {
                    let kb = p.k_off as usize + j * p.k_row as usize + h * d;
                    let s: f64 = (0..d).map(|c| q[qb + c] as f64 * k[kb + c] as f64).sum::<f64>() * p.scale as f64;
                    let row = bias_len(p.tq as usize, p.tk as usize);
                    s + bias.map_or(0.0, |b| b[h * row + j + p.tq as usize - 1 - qi] as f64)
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let z: f64 = e.iter().sum();
            let ob = p.o_off as usize + qi * p.o_row as usize + h * d;
            for c in 0..d {
                let acc: f64 = keys.iter().zip(&e).map(|(&j, w)| w * v[p.v_off as usize + j * p.v_row as usize + h * d + c] as f64).sum();
                o[ob + c] = if z > 0.0 { (acc / z) as f32 } else { 0.0 };
            }
        }
    }
}
