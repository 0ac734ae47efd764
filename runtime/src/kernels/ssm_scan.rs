//! `shaders/ssm_scan.wgsl`: the VideoSSM memory's scans (B.3 gated linear, B.6 gated
//! delta token by token and chunked), gates and read.
use crate::device::{Capabilities, DeviceKind};
use crate::error::{Result, RuntimeError};
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use crate::tensor::DType;
use std::fmt;

/// Largest head dim of the kernels that keep a row of S or q̂ in workgroup memory
/// (64 invocations × 4 elements; `MAXD` in the shader).
pub const MAX_HEAD_DIM: usize = 256;

/// Block lengths of the chunked delta rule, largest first.
const DELTA_CHUNKS: [u32; 3] = [64, 32, 16];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ssm {
    /// B.3: fold evicted tokens into S: bindings k̂, v, β, a, S (read-write).
    /// In the scans, v, β and a are caches read at the tokens' slots, k̂ `[T, H·d]`
    /// (f32) holds the call's tokens in order; `f16` says the v cache is f16 (a
    /// session's f16 KV cache, needs `shader-f16`), else f32.
    Scan { f16: bool },
    /// B.6 token by token (reference and fallback): bindings k̂, v, β, a, S (read-write).
    DeltaStep { f16: bool },
    /// B.6 chunked, pass 1, blocks of `chunk` tokens in parallel: bindings k̂, v, β, a,
    /// then W, Ũ `[T, H·d]` and g `[T, H]` (written).
    DeltaPrepare { chunk: u32, f16: bool },
    /// B.6 chunked, pass 2, blocks in order per row of S: bindings k̂, W, Ũ, g, S (read-write).
    DeltaUpdate { chunk: u32 },
    /// Raw projections + `A_log` → β, a (and with `router`, B.3's g): raw `[T, 2H]`
    /// or `[T, 3H]`, A_log, β, a (, g).
    Gates { router: bool },
    /// `r = S q̂` per head. B.3: `y + g ⊙ r`, bindings y, S, q̂, g `[T, H]`, out.
    /// B.6 (`delta`): `y + m ⊙ γ ⊙ Swish(g ⊙ RMSNorm(r))`, bindings y, S, q̂,
    /// g `[T, D]`, consts `[d + 2D]`, ln ρ `[F]`, modulation, out. `tiled` (GPUs) reads
    /// S_h through workgroup memory in tiles loaded along its rows, so adjacent invocations
    /// load adjacent addresses; CPU adapters walk the rows directly, 3.7× faster on
    /// lavapipe, where the tile's barriers cost more than the strided loads.
    Read { delta: bool, tiled: bool },
}

impl Ssm {
    /// Whether the scan reads an f16 v cache.
    pub fn cache_f16(&self) -> bool {
        matches!(self, Ssm::Scan { f16: true } | Ssm::DeltaStep { f16: true } | Ssm::DeltaPrepare { f16: true, .. })
    }

    /// The read for this adapter (see [`Ssm::Read`]).
    pub fn read_for(caps: &Capabilities, delta: bool) -> Ssm {
        Ssm::Read { delta, tiled: caps.device_type == DeviceKind::Gpu }
    }
}

/// How a session folds evicted tokens under the delta rule on one adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeltaScan {
    /// [`Ssm::DeltaPrepare`] + [`Ssm::DeltaUpdate`] with blocks of this many tokens.
    Chunked(u32),
    /// [`Ssm::DeltaStep`].
    Step,
}

impl DeltaScan {
    /// The largest block whose C×C solve (plus g, β and one row) fits the adapter's
    /// workgroup memory: C = 64 needs 17 KiB, above WebGPU's guaranteed 16 KiB.
    pub fn for_device(caps: &Capabilities) -> DeltaScan {
        DELTA_CHUNKS
            .iter()
            .find(|&&c| Self::prepare_bytes(c) <= caps.workgroup_storage as usize)
            .map_or(DeltaScan::Step, |&c| DeltaScan::Chunked(c))
    }

    /// Workgroup memory of [`Ssm::DeltaPrepare`]: `tri [C²]`, `arow`, `gs`, `bs [C]`.
    pub fn prepare_bytes(chunk: u32) -> usize {
        4 * (chunk as usize * chunk as usize + 3 * chunk as usize)
    }
}

crate::params! {
    #[derive(Default)]
    pub struct Params {
        pub heads: u32,
        pub d: u32,
        pub tokens: u32,
        /// Scans: tokens `0..count0` sit at slots `start0..`, the rest at `start1..`.
        pub count0: u32,
        pub start0: u32,
        pub start1: u32,
        /// Scans: row stride of the k̂, v, W and Ũ tensors (H·d).
        pub row: u32,
        /// B.6 read: tokens per frame (ln ρ and the modulation are per frame).
        pub frame_rows: u32,
        /// B.6 read: row width of the modulation and the offset of its gate slot.
        pub mod_row: u32,
        pub mod_off: u32,
        /// B.6 read: RMSNorm epsilon.
        pub eps: f32,
        pub _pad: u32,
    }
}

impl Params {
    /// A scan over the slot runs `runs` (in token order, at most two).
    pub fn scan(heads: usize, d: usize, runs: &[std::ops::Range<usize>]) -> Params {
        assert!(runs.len() <= 2, "a ring splits evictions into at most two runs");
        let r0 = runs.first().cloned().unwrap_or(0..0);
        let r1 = runs.get(1).cloned().unwrap_or(0..0);
        Params {
            tokens: (r0.len() + r1.len()) as u32,
            count0: r0.len() as u32,
            start0: r0.start as u32,
            start1: r1.start as u32,
            ..Params::tokens(0, heads, d)
        }
    }

    pub fn tokens(tokens: usize, heads: usize, d: usize) -> Params {
        Params { heads: heads as u32, d: d as u32, tokens: tokens as u32, row: (heads * d) as u32, ..Default::default() }
    }

    /// The B.6 read of `tokens` rows, `frame_rows` a frame; the modulation gate of
    /// frame f is `modulation[f·mod_row + mod_off ..]`.
    pub fn read_delta(tokens: usize, heads: usize, d: usize, frame_rows: usize, mod_row: usize, mod_off: usize, eps: f32) -> Params {
        Params { frame_rows: frame_rows as u32, mod_row: mod_row as u32, mod_off: mod_off as u32, eps, ..Params::tokens(tokens, heads, d) }
    }
}

impl fmt::Display for Ssm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ssm::Scan { .. } => f.write_str("ssm_scan_chunked64"),
            Ssm::DeltaStep { .. } => f.write_str("ssm_delta_step"),
            Ssm::DeltaPrepare { chunk, .. } => write!(f, "ssm_delta_prepare_c{chunk}"),
            Ssm::DeltaUpdate { chunk, .. } => write!(f, "ssm_delta_update_c{chunk}"),
            Ssm::Gates { router } => f.write_str(if *router { "ssm_gates3" } else { "ssm_gates2" }),
            Ssm::Read { delta, tiled } => {
                write!(f, "{}{}", if *delta { "ssm_read_delta" } else { "ssm_read" }, if *tiled { "_tiled" } else { "" })
            }
        }?;
        f.write_str(if self.cache_f16() { "_kvf16" } else { "" })
    }
}

impl Kernel for Ssm {
    type Params = Params;

    fn wgsl(&self) -> String {
        let d = match *self {
            Ssm::Scan { .. } => Defines::new().flag("SCAN", true),
            Ssm::DeltaStep { .. } => Defines::new().flag("DELTA_STEP", true).flag("REDUCE", true),
            Ssm::DeltaPrepare { chunk, .. } => Defines::new().flag("DELTA_PREPARE", true).set("C", chunk),
            Ssm::DeltaUpdate { chunk, .. } => Defines::new().flag("DELTA_UPDATE", true).set("C", chunk),
            Ssm::Gates { router } => Defines::new().flag("GATES", true).flag("ROUTER", router),
            Ssm::Read { delta, tiled } => {
                Defines::new().flag("READ", true).flag("GATED_DELTA", delta).flag("REDUCE", delta).flag("TILED", tiled)
            }
        };
        let cache = if self.cache_f16() { DType::F16 } else { DType::F32 };
        expand("ssm_scan.wgsl", &d.flag("F16", self.cache_f16()).set("CACHE", cache.name()))
    }

    /// The scans' k̂ (their first operand) is f32 and their v cache (the second; the
    /// update reads none) of the dtype the variant reads.
    fn check(&self, _p: &Params, operands: &[(DType, usize)]) -> Result<()> {
        let cache = if self.cache_f16() { DType::F16 } else { DType::F32 };
        let want: &[DType] = match self {
            Ssm::Scan { .. } | Ssm::DeltaStep { .. } | Ssm::DeltaPrepare { .. } => &[DType::F32, cache],
            Ssm::DeltaUpdate { .. } => &[DType::F32],
            Ssm::Gates { .. } | Ssm::Read { .. } => &[],
        };
        match operands.iter().zip(want).position(|(&(dtype, _), &w)| dtype != w) {
            Some(i) => Err(RuntimeError::Validation {
                label: self.to_string(),
                message: format!("operand {i} ({}) is {}, the kernel reads {}", ["k̂", "v"][i], operands[i].0, want[i]),
            }),
            None => Ok(()),
        }
    }

    fn bindings(&self) -> Vec<Access> {
        use Access::{Read as R, ReadWrite as W};
        match self {
            Ssm::Scan { .. } | Ssm::DeltaStep { .. } | Ssm::DeltaUpdate { .. } => vec![R, R, R, R, W],
            Ssm::DeltaPrepare { .. } => vec![R, R, R, R, W, W, W],
            Ssm::Gates { router: true } => vec![R, R, W, W, W],
            Ssm::Gates { router: false } => vec![R, R, W, W],
            Ssm::Read { delta: false, .. } => vec![R, R, R, R, W],
            Ssm::Read { delta: true, .. } => vec![R, R, R, R, R, R, R, W],
        }
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        match self {
            // One invocation per state element, one grid row per head.
            Ssm::Scan { .. } => [(p.d * p.d).div_ceil(64), p.heads, 1],
            // One workgroup per (block, head); none has work when nothing is evicted.
            Ssm::DeltaPrepare { chunk, .. } => [p.tokens.div_ceil(*chunk).max(1), p.heads, 1],
            // One workgroup per row of S.
            Ssm::DeltaStep { .. } | Ssm::DeltaUpdate { .. } => [p.d, p.heads, 1],
            Ssm::Gates { .. } => super::grid_1d((p.tokens * p.heads).div_ceil(64)),
            // One workgroup per (token, head).
            Ssm::Read { .. } => super::grid_1d(p.tokens * p.heads),
        }
    }
}

pub fn variants() -> Vec<(String, String)> {
    let mut k = vec![Ssm::Gates { router: true }, Ssm::Gates { router: false }];
    for delta in [false, true] {
        k.extend([Ssm::Read { delta, tiled: false }, Ssm::Read { delta, tiled: true }]);
    }
    for f16 in [false, true] {
        k.extend([Ssm::Scan { f16 }, Ssm::DeltaStep { f16 }]);
        k.extend(DELTA_CHUNKS.iter().map(|&chunk| Ssm::DeltaPrepare { chunk, f16 }));
    }
    k.extend(DELTA_CHUNKS.iter().map(|&chunk| Ssm::DeltaUpdate { chunk }));
    k.iter().map(|k| (k.to_string(), k.wgsl())).collect()
}

/// B.3's token-by-token recurrence in f64: `S_h ← a·S_h + β·v k̂ᵀ` for the tokens
/// at `slots` of the v, β and a caches, whose k̂ are the rows of `khat` in that order.
pub fn reference_scan(p: &Params, slots: &[usize], khat: &[f32], v: &[f32], beta: &[f32], decay: &[f32], state: &mut [f64]) {
    let (h, d, row) = (p.heads as usize, p.d as usize, p.row as usize);
    for (t, &s) in slots.iter().enumerate() {
        for hh in 0..h {
            let (a, b) = (decay[s * h + hh] as f64, beta[s * h + hh] as f64);
            for i in 0..d {
                for j in 0..d {
                    let e = &mut state[(hh * d + i) * d + j];
                    *e = a * *e + b * v[s * row + hh * d + i] as f64 * khat[t * row + hh * d + j] as f64;
                }
            }
        }
    }
}

/// B.6's gated delta rule token by token in f64: `u = β(v − a·S k̂)`, `S ← a·S + u k̂ᵀ`,
/// operands as in [`reference_scan`].
pub fn reference_delta(p: &Params, slots: &[usize], khat: &[f32], v: &[f32], beta: &[f32], decay: &[f32], state: &mut [f64]) {
    let (h, d, row) = (p.heads as usize, p.d as usize, p.row as usize);
    for (t, &s) in slots.iter().enumerate() {
        for hh in 0..h {
            let (a, b) = (decay[s * h + hh] as f64, beta[s * h + hh] as f64);
            let k = &khat[t * row + hh * d..][..d];
            for i in 0..d {
                let srow = &mut state[(hh * d + i) * d..][..d];
                let pred: f64 = srow.iter().zip(k).map(|(&x, &kj)| x * kj as f64).sum();
                let u = b * (v[s * row + hh * d + i] as f64 - a * pred);
                srow.iter_mut().zip(k).for_each(|(x, &kj)| *x = a * *x + u * kj as f64);
            }
        }
    }
}

/// Gates in f64 from raw `[T, G·H]` projections (G = 3 with the B.3 router, else 2):
/// (β, a) and with `router` g, each `[T, H]`.
pub fn reference_gates(tokens: usize, heads: usize, raw: &[f32], a_log: &[f32], router: bool) -> Vec<Vec<f32>> {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let groups = if router { 3 } else { 2 };
    let mut out = vec![Vec::new(); groups];
    for t in 0..tokens {
        for h in 0..heads {
            let r = |k: usize| raw[t * groups * heads + k * heads + h] as f64;
            out[0].push(sig(r(0)) as f32);
            out[1].push((-(a_log[h] as f64).exp() * (1.0 + r(1).exp()).ln()).exp() as f32);
            if router {
                out[2].push(sig(r(2)) as f32);
            }
        }
    }
    out
}

/// `S_h q̂_h` of token t, row i, in f64.
fn s_qhat(p: &Params, state: &[f32], qhat: &[f32], t: usize, hh: usize, i: usize) -> f64 {
    let (h, d) = (p.heads as usize, p.d as usize);
    (0..d).map(|j| state[(hh * d + i) * d + j] as f64 * qhat[t * h * d + hh * d + j] as f64).sum()
}

/// B.3: `y + g ⊙ S q̂` in f64.
pub fn reference_read(p: &Params, y: &[f32], state: &[f32], qhat: &[f32], gate: &[f32]) -> Vec<f32> {
    let (h, d) = (p.heads as usize, p.d as usize);
    let mut o = y.to_vec();
    for t in 0..p.tokens as usize {
        for hh in 0..h {
            for i in 0..d {
                let e = t * h * d + hh * d + i;
                o[e] = (y[e] as f64 + gate[t * h + hh] as f64 * s_qhat(p, state, qhat, t, hh, i)) as f32;
            }
        }
    }
    o
}

/// The B.6 read's inputs besides y, S and q̂ (see [`Ssm::Read`]).
pub struct DeltaReadInputs<'a> {
    /// `out_gate(x)` `[T, D]`
    pub gate: &'a [f32],
    /// `[norm.weight (d) | router.weight (D) | router.bias (D)]`
    pub consts: &'a [f32],
    /// `[F]`
    pub ln_rho: &'a [f32],
    pub modulation: &'a [f32],
}

/// B.6: `y + m ⊙ γ ⊙ Swish(g ⊙ RMSNorm_d(S q̂))`, `γ = σ(w_r ln ρ + b_r)`, in f64.
pub fn reference_read_delta(p: &Params, y: &[f32], state: &[f32], qhat: &[f32], x: &DeltaReadInputs) -> Vec<f32> {
    let (h, d) = (p.heads as usize, p.d as usize);
    let width = h * d;
    let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
    let mut o = y.to_vec();
    for t in 0..p.tokens as usize {
        let f = t / p.frame_rows as usize;
        for hh in 0..h {
            let r: Vec<f64> = (0..d).map(|i| s_qhat(p, state, qhat, t, hh, i)).collect();
            let inv = 1.0 / (r.iter().map(|v| v * v).sum::<f64>() / d as f64 + p.eps as f64).sqrt();
            for (i, ri) in r.iter().enumerate() {
                let c = hh * d + i;
                let e = t * width + c;
                let z = x.gate[e] as f64 * ri * inv * x.consts[i] as f64;
                let gamma = sig(x.consts[d + c] as f64 * x.ln_rho[f] as f64 + x.consts[d + width + c] as f64);
                let mg = x.modulation[f * p.mod_row as usize + p.mod_off as usize + c] as f64;
                o[e] = (y[e] as f64 + mg * gamma * z * sig(z)) as f32;
            }
        }
    }
    o
}
