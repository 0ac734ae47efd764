//! Typed op constructors over the runtime's kernel families. Each infers its output
//! shape, checks its inputs at build time and appends one dispatch.
use crate::builder::Builder;
use crate::error::{GraphError, Result};
use crate::ir::TensorId;
use runtime::kernels::elementwise::{self, Elementwise};
use runtime::DType;

impl Builder {
    fn elementwise(&mut self, name: &str, op: elementwise::Op, a: TensorId, b: TensorId, alpha: f32) -> Result<TensorId> {
        let shape = self.shape(a).to_vec();
        let (n, len_b) = (shape.iter().product::<usize>(), self.shape(b).iter().product::<usize>());
        if len_b == 0 || n % len_b != 0 {
            return Err(GraphError::Shape { op: name.into(), message: format!("cannot broadcast {:?} over {shape:?}", self.shape(b)) });
        }
        let y = self.activation(name, &shape, DType::F32);
        self.dispatch(name, Elementwise { op }, &elementwise::Params::new(n, len_b, alpha), &[a, b, y])?;
        Ok(y)
    }

    /// `a + alpha·b`, with `b` repeating over `a` (a bias row, a per-channel vector).
    pub fn add(&mut self, name: &str, a: TensorId, b: TensorId, alpha: f32) -> Result<TensorId> {
        self.elementwise(name, elementwise::Op::Add, a, b, alpha)
    }

    pub fn mul(&mut self, name: &str, a: TensorId, b: TensorId) -> Result<TensorId> {
        self.elementwise(name, elementwise::Op::Mul, a, b, 1.0)
    }

    pub fn silu(&mut self, name: &str, a: TensorId) -> Result<TensorId> {
        self.elementwise(name, elementwise::Op::Silu, a, a, 1.0)
    }

    pub fn gelu(&mut self, name: &str, a: TensorId) -> Result<TensorId> {
        self.elementwise(name, elementwise::Op::Gelu, a, a, 1.0)
    }
}
