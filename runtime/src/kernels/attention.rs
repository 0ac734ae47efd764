//! `shaders/attention.wgsl`: online-softmax attention over explicit key ranges.
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use crate::tensor::DType;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attention {
    /// Head dim: the size of the register arrays and of the unrolled loops.
    pub head_dim: u32,
    /// With T5's additive relative-position bias: a table `[heads, tq + tk − 1]`
    /// indexed by `j − i + tq − 1` (key minus query), so an L-token encoder binds
    /// H·(2L−1) values per layer instead of an H·L·L score bias.
    pub bias: bool,
}

impl Attention {
    pub fn new(head_dim: usize, bias: bool) -> Attention {
        Attention { head_dim: head_dim as u32, bias }
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
        write!(f, "attention_d{}{}", self.head_dim, if self.bias { "_bias" } else { "" })
    }
}

impl Kernel for Attention {
    type Params = Params;

    fn wgsl(&self) -> String {
        expand("attention.wgsl", &Defines::new().set("HD", self.head_dim).flag("BIAS", self.bias))
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
        [p.tq.div_ceil(64), p.heads, 1]
    }
}

pub fn variants() -> Vec<(String, String)> {
    [8, 16, 32, 64, 128, 384]
        .into_iter()
        .flat_map(|d| [false, true].map(|b| Attention::new(d, b)))
        .map(|k| (k.to_string(), k.wgsl()))
        .collect()
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
