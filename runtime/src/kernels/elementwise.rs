//! `shaders/elementwise.wgsl`: y = op(a, b) with b broadcast by modulus.
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// y = a + alpha·b
    Add,
    /// y = a · b
    Mul,
    /// y = silu(a)
    Silu,
    /// y = gelu_tanh(a)
    Gelu,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Add, Op::Mul, Op::Silu, Op::Gelu];

    fn define(self) -> &'static str {
        match self {
            Op::Add => "OP_ADD",
            Op::Mul => "OP_MUL",
            Op::Silu => "OP_SILU",
            Op::Gelu => "OP_GELU",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Elementwise {
    pub op: Op,
}

crate::params! {
    pub struct Params {
        pub n: u32,
        pub len_b: u32,
        pub alpha: f32,
        pub _pad: u32,
    }
}

const WG: u32 = 256;

impl Params {
    pub fn new(n: usize, len_b: usize, alpha: f32) -> Params {
        Params { n: n as u32, len_b: len_b.max(1) as u32, alpha, _pad: 0 }
    }
}

impl fmt::Display for Elementwise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "elementwise_{}", format!("{:?}", self.op).to_lowercase())
    }
}

impl Kernel for Elementwise {
    type Params = Params;

    fn wgsl(&self) -> String {
        expand("elementwise.wgsl", &Defines::new().flag(self.op.define(), true))
    }

    fn bindings(&self) -> Vec<Access> {
        vec![Access::Read, Access::Read, Access::ReadWrite]
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        super::grid_1d(p.n.div_ceil(WG))
    }
}

pub fn variants() -> Vec<(String, String)> {
    Op::ALL.iter().map(|&op| Elementwise { op }).map(|k| (k.to_string(), k.wgsl())).collect()
}

/// CPU reference in f64.
pub fn reference(op: Op, a: &[f32], b: &[f32], alpha: f32) -> Vec<f32> {
    a.iter()
        .enumerate()
        .map(|(i, &x)| {
            let x = x as f64;
            let w = b[i % b.len().max(1)] as f64;
            (match op {
                Op::Add => x + alpha as f64 * w,
                Op::Mul => x * w,
                Op::Silu => x / (1.0 + (-x).exp()),
                Op::Gelu => super::gelu_tanh(x),
            }) as f32
        })
        .collect()
}
