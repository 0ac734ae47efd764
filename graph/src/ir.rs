//! The graph IR: typed tensors and kernel invocations in program order.
use runtime::{Access, AnyKernel, DType};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub(crate) usize);

/// Who owns a tensor's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Written by the host before a run (noise, timestep embedding, RoPE tables).
    Input,
    /// Weights: uploaded once, shared, never written.
    Param,
    /// Session state (KV window, sinks, SSM state): outlives runs, never reused by the planner.
    State,
    /// Intermediate values: placed by the planner.
    Activation,
    /// Read by the host after a run; never reused.
    Output,
}

#[derive(Clone, Debug)]
pub struct TensorDesc {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub kind: Kind,
}

impl TensorDesc {
    pub fn bytes(&self) -> u64 {
        self.dtype.storage_bytes(self.shape.iter().product())
    }
}

/// One dispatch: a kernel variant, its params and its bindings in kernel order.
#[derive(Clone)]
pub struct Node {
    pub label: String,
    pub kernel: Arc<dyn AnyKernel>,
    pub params: Vec<u8>,
    pub args: Vec<TensorId>,
}

impl Node {
    /// The tensors this node writes (its read-write bindings).
    pub fn writes(&self) -> impl Iterator<Item = TensorId> + '_ {
        self.kernel.bindings().into_iter().zip(&self.args).filter(|(a, _)| *a == Access::ReadWrite).map(|(_, &t)| t)
    }
}

#[derive(Clone, Default)]
pub struct Graph {
    pub tensors: Vec<TensorDesc>,
    pub nodes: Vec<Node>,
}

impl Graph {
    pub fn desc(&self, t: TensorId) -> &TensorDesc {
        &self.tensors[t.0]
    }

    pub fn find(&self, name: &str) -> Option<TensorId> {
        self.tensors.iter().position(|t| t.name == name).map(TensorId)
    }

    pub fn ids(&self) -> impl Iterator<Item = TensorId> {
        (0..self.tensors.len()).map(TensorId)
    }
}
