//! `shaders/peak.wgsl`: the FMA-throughput probe that calibrates `bench --full`'s share
//! of an adapter's peak when the user gives none (`--peak-tflops`). It measures vector
//! FMA throughput: matrix units (tensor cores, simdgroup matrices) go beyond it, so
//! their peak has to be given.
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use crate::tensor::DType;
use std::fmt;

const WG: u32 = 256;
/// FMA chains per invocation × lanes per chain.
const LANES: u32 = 8 * 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peak {
    /// f16 arithmetic (needs the adapter's shader-f16) instead of f32.
    pub f16: bool,
}

crate::params! {
    #[derive(Default)]
    pub struct Params {
        /// FMA steps of every chain: llvmpipe leaves loops after 65535 iterations.
        pub iters: u32,
        /// Invocations, one output each.
        pub n: u32,
        pub _pad0: u32,
        pub _pad1: u32,
    }
}

impl Params {
    pub fn new(invocations: u32, iters: u32) -> Params {
        Params { iters, n: invocations, ..Default::default() }
    }
}

impl fmt::Display for Peak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peak_fma_{}", if self.f16 { "f16" } else { "f32" })
    }
}

impl Kernel for Peak {
    type Params = Params;

    fn wgsl(&self) -> String {
        expand("peak.wgsl", &Defines::new().flag("F16", self.f16))
    }

    fn bindings(&self) -> Vec<Access> {
        vec![Access::ReadWrite]
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        super::grid_1d(p.n.div_ceil(WG))
    }

    fn flops(&self, p: &Params, _operands: &[(DType, usize)]) -> f64 {
        2.0 * LANES as f64 * p.iters as f64 * self.workgroups(p).iter().map(|&g| g as f64).product::<f64>() * WG as f64
    }
}

pub fn variants() -> Vec<(String, String)> {
    [false, true].map(|f16| Peak { f16 }).iter().map(|k| (k.to_string(), k.wgsl())).collect()
}

/// What invocation `i` stores, in f64: the eight chains' sum over their four lanes.
pub fn reference(i: u32, iters: u32) -> f64 {
    let s = (i % 8) as f64 * 0.125;
    let chain = |a0: f64| (0..iters).fold(a0, |a, _| a * 0.75 + 0.25);
    4.0 * (0..8).map(|j| chain(s + 0.125 * j as f64)).sum::<f64>()
}
