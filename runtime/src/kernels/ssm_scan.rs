//! `shaders/ssm_scan.wgsl`: the VideoSSM memory's chunked scan, gates and read.
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ssm {
    /// Fold evicted tokens into S: bindings k̂, v, β, a, S (read-write).
    Scan,
    /// Raw `[T, 3H]` projections + `A_log` → β, a, g: bindings raw, A_log, β, a, g.
    Gates,
    /// `y + g ⊙ S q̂`: bindings y, S, q̂, g, out.
    Read,
}

crate::params! {
    #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
    pub struct Params {
        pub heads: u32,
        pub d: u32,
        pub tokens: u32,
        /// Scan: tokens `0..count0` sit at slots `start0..`, the rest at `start1..`.
        pub count0: u32,
        pub start0: u32,
        pub start1: u32,
        /// Scan: row stride of the k̂ and v caches (H·d).
        pub row: u32,
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
            heads: heads as u32,
            d: d as u32,
            tokens: (r0.len() + r1.len()) as u32,
            count0: r0.len() as u32,
            start0: r0.start as u32,
            start1: r1.start as u32,
            row: (heads * d) as u32,
            _pad: 0,
        }
    }

    pub fn tokens(tokens: usize, heads: usize, d: usize) -> Params {
        Params { heads: heads as u32, d: d as u32, tokens: tokens as u32, row: (heads * d) as u32, ..Default::default() }
    }
}

impl fmt::Display for Ssm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ssm::Scan => "ssm_scan_chunked64",
            Ssm::Gates => "ssm_gates",
            Ssm::Read => "ssm_read",
        })
    }
}

impl Kernel for Ssm {
    type Params = Params;

    fn wgsl(&self) -> String {
        let d = Defines::new().flag("SCAN", *self == Ssm::Scan).flag("GATES", *self == Ssm::Gates).flag("READ", *self == Ssm::Read);
        expand("ssm_scan.wgsl", &d)
    }

    fn bindings(&self) -> Vec<Access> {
        match self {
            Ssm::Scan => vec![Access::Read, Access::Read, Access::Read, Access::Read, Access::ReadWrite],
            Ssm::Gates => vec![Access::Read, Access::Read, Access::ReadWrite, Access::ReadWrite, Access::ReadWrite],
            Ssm::Read => vec![Access::Read, Access::Read, Access::Read, Access::Read, Access::ReadWrite],
        }
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        match self {
            // One invocation per state element, one grid row per head.
            Ssm::Scan => [(p.d * p.d).div_ceil(64), p.heads, 1],
            Ssm::Gates => [(p.tokens * p.heads).div_ceil(64).max(1), 1, 1],
            Ssm::Read => super::grid_1d((p.tokens * p.heads * p.d).div_ceil(64)),
        }
    }
}

pub fn variants() -> Vec<(String, String)> {
    [Ssm::Scan, Ssm::Gates, Ssm::Read].iter().map(|k| (k.to_string(), k.wgsl())).collect()
}

/// The token-by-token recurrence in f64: `S_h ← a·S_h + β·v k̂ᵀ` for tokens at `slots`.
pub fn reference_scan(p: &Params, slots: &[usize], khat: &[f32], v: &[f32], beta: &[f32], decay: &[f32], state: &mut [f64]) {
    let (h, d, row) = (p.heads as usize, p.d as usize, p.row as usize);
    for &s in slots {
        for hh in 0..h {
            let (a, b) = (decay[s * h + hh] as f64, beta[s * h + hh] as f64);
            for i in 0..d {
                for j in 0..d {
                    let e = &mut state[(hh * d + i) * d + j];
                    *e = a * *e + b * v[s * row + hh * d + i] as f64 * khat[s * row + hh * d + j] as f64;
                }
            }
        }
    }
}

/// Gates in f64 from raw `[T, 3H]` projections: (β, a, g), each `[T, H]`.
pub fn reference_gates(tokens: usize, heads: usize, raw: &[f32], a_log: &[f32]) -> [Vec<f32>; 3] {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut out = [Vec::new(), Vec::new(), Vec::new()];
    for t in 0..tokens {
        for h in 0..heads {
            let r = |k: usize| raw[t * 3 * heads + k * heads + h] as f64;
            out[0].push(sig(r(0)) as f32);
            out[1].push((-(a_log[h] as f64).exp() * (1.0 + r(1).exp()).ln()).exp() as f32);
            out[2].push(sig(r(2)) as f32);
        }
    }
    out
}

/// `y + g ⊙ S q̂` in f64.
pub fn reference_read(p: &Params, y: &[f32], state: &[f32], qhat: &[f32], gate: &[f32]) -> Vec<f32> {
    let (h, d) = (p.heads as usize, p.d as usize);
    let mut o = y.to_vec();
    for t in 0..p.tokens as usize {
        for hh in 0..h {
            for i in 0..d {
                let acc: f64 = (0..d).map(|j| state[(hh * d + i) * d + j] as f64 * qhat[t * h * d + hh * d + j] as f64).sum();
                o[t * h * d + hh * d + i] = (y[t * h * d + hh * d + i] as f64 + gate[t * h + hh] as f64 * acc) as f32;
            }
        }
    }
    o
}
