//! Building a graph: declare inputs, bind weights and session state, append ops.
//! Model code calls the typed op methods (`ops.rs`); they infer and check shapes
//! here, at build time, naming the op at fault.
use crate::error::{GraphError, Result};
use crate::ir::{Graph, Kind, Node, TensorDesc, TensorId};
use runtime::{Capabilities, DType, Kernel, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

pub struct Builder {
    /// What the target adapter offers: ops pick kernel variants from it.
    pub(crate) caps: Capabilities,
    pub(crate) graph: Graph,
    /// Largest activation model code may make whole; larger ones it makes in row blocks.
    split_bytes: u64,
    /// Device tensors of params and state, owned outside the graph.
    pub(crate) bound: HashMap<TensorId, Tensor>,
    by_name: HashMap<String, TensorId>,
}

impl Builder {
    pub fn new(caps: Capabilities) -> Builder {
        Builder { caps, graph: Graph::default(), split_bytes: u64::MAX, bound: HashMap::new(), by_name: HashMap::new() }
    }

    /// For the device a graph is built for: activations above its storage binding
    /// limit (or `opts.split_bytes`, when lower) are made in row blocks.
    pub fn for_device(gpu: &runtime::Gpu, opts: &crate::CompileOptions) -> Builder {
        let mut g = Builder::new(gpu.caps);
        g.split_bytes = opts.split_bytes.map_or(gpu.max_binding(), |b| b.min(gpu.max_binding()));
        g
    }

    /// See [`Builder::for_device`].
    pub fn split_bytes(&self) -> u64 {
        self.split_bytes
    }

    fn declare(&mut self, name: &str, shape: &[usize], dtype: DType, kind: Kind) -> TensorId {
        let id = TensorId(self.graph.tensors.len());
        // Later tensors shadow earlier ones of the same name, so readback by name finds the newest.
        self.by_name.insert(name.to_string(), id);
        self.graph.tensors.push(TensorDesc { name: name.to_string(), shape: shape.to_vec(), dtype, kind });
        id
    }

    /// A tensor the host writes before each run.
    pub fn input(&mut self, name: &str, shape: &[usize], dtype: DType) -> TensorId {
        self.declare(name, shape, dtype, Kind::Input)
    }

    /// A weight already on the device; binding the same name twice returns the same id.
    pub fn param(&mut self, name: &str, t: &Tensor) -> TensorId {
        if let Some(&id) = self.by_name.get(name) {
            if self.graph.desc(id).kind == Kind::Param {
                return id;
            }
        }
        let id = self.declare(name, &t.shape, t.dtype, Kind::Param);
        self.bound.insert(id, t.clone());
        id
    }

    /// Session state on the device (KV cache, SSM state): read and written in place.
    pub fn state(&mut self, name: &str, t: &Tensor) -> TensorId {
        let id = self.declare(name, &t.shape, t.dtype, Kind::State);
        self.bound.insert(id, t.clone());
        id
    }

    /// Session state declared by shape only, for a graph that is planned and
    /// measured but never compiled (compiling it is a binding error).
    pub fn planned_state(&mut self, name: &str, shape: &[usize], dtype: DType) -> TensorId {
        self.declare(name, shape, dtype, Kind::State)
    }

    /// A new intermediate value, placed by the planner.
    pub fn activation(&mut self, name: &str, shape: &[usize], dtype: DType) -> TensorId {
        self.declare(name, shape, dtype, Kind::Activation)
    }

    /// Keeps `t` readable after runs under `name` (its buffer is never reused).
    pub fn output(&mut self, t: TensorId, name: &str) {
        let d = &mut self.graph.tensors[t.0];
        d.kind = Kind::Output;
        d.name = name.to_string();
        self.by_name.insert(name.to_string(), t);
    }

    pub fn shape(&self, t: TensorId) -> &[usize] {
        &self.graph.desc(t).shape
    }

    pub fn dtype(&self, t: TensorId) -> DType {
        self.graph.desc(t).dtype
    }

    pub fn id(&self, name: &str) -> Result<TensorId> {
        self.by_name.get(name).copied().ok_or_else(|| GraphError::UnknownTensor(name.to_string()))
    }

    /// Appends one kernel invocation; `args` follow the kernel's binding order.
    /// Returns the node index (for per-run param updates).
    pub fn dispatch<K: Kernel + Clone + Send + Sync + 'static>(
        &mut self,
        label: &str,
        kernel: K,
        params: &K::Params,
        args: &[TensorId],
    ) -> Result<usize> {
        let declared = kernel.bindings().len();
        if declared != args.len() {
            return Err(GraphError::Shape {
                op: label.into(),
                message: format!("{} arguments for {declared} bindings of {kernel}", args.len()),
            });
        }
        self.graph.nodes.push(Node {
            label: label.to_string(),
            kernel: Arc::new(kernel),
            params: bytemuck::bytes_of(params).to_vec(),
            args: args.to_vec(),
        });
        Ok(self.graph.nodes.len() - 1)
    }

    /// Build-time shape check with a message naming the op.
    pub fn expect_shape(&self, op: &str, what: &str, t: TensorId, want: &[usize]) -> Result<()> {
        let got = self.shape(t);
        if got != want {
            return Err(GraphError::Shape { op: op.into(), message: format!("{what} has shape {got:?}, expected {want:?}") });
        }
        Ok(())
    }

    /// A `LimitExceeded` naming the first tensor that does not fit one storage binding
    /// of `gpu`: compiling checks this, and planned-only graphs can ask before.
    pub fn check_bindings(&self, gpu: &runtime::Gpu) -> Result<()> {
        for id in self.graph.ids() {
            let d = self.graph.desc(id);
            gpu.check_binding(&d.name, d.bytes())?;
        }
        Ok(())
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }
}
