//! A compiled graph: buffers allocated from the plan, bind groups and pipelines
//! resolved once, and the dispatch list recorded for replay.
use crate::builder::Builder;
use crate::error::{GraphError, Result};
use crate::ir::{Graph, Kind, TensorId};
use crate::plan::Plan;
use runtime::{Gpu, Program, StepTime, Tensor};
use std::fmt;

#[derive(Clone, Copy, Debug)]
pub struct CompileOptions {
    /// Share activation buffers between tensors with disjoint lifetimes.
    pub reuse: bool,
    /// Make activations above this many bytes in row blocks even where they fit a
    /// binding, to exercise the split on small models (`None`: the binding limit).
    pub split_bytes: Option<u64>,
    /// Hold the DiT's attention caches (KV window, text K/V, memory keys) as f16:
    /// `None` decides by the weights ([`crate::models::cache_dtype`]), `Some(true)`
    /// wherever the adapter has `shader-f16` (it stays f32 elsewhere), `Some(false)` never.
    pub kv_f16: Option<bool>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        CompileOptions {
            // VIDEOSSM_NO_REUSE=1 turns reuse off everywhere, to bisect planner bugs.
            reuse: env("VIDEOSSM_NO_REUSE").is_none_or(|v| v == "0"),
            split_bytes: None,
            // VIDEOSSM_KV_F16=1 / =0 forces the DiT's caches to f16 / f32.
            kv_f16: env("VIDEOSSM_KV_F16").map(|v| v != "0"),
        }
    }
}

pub struct Compiled {
    graph: Graph,
    plan: Plan,
    tensors: Vec<Tensor>,
    program: Program,
}

/// What a compiled graph costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub ops: usize,
    pub dispatches: usize,
    pub planned_activation_bytes: u64,
    pub naive_activation_bytes: u64,
    pub weight_bytes: u64,
    pub state_bytes: u64,
    pub io_bytes: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        write!(
            f,
            "{} ops, {} dispatches; activations {:.2} MiB planned vs {:.2} MiB without reuse; weights {:.2} MiB; state {:.2} MiB; inputs/outputs {:.2} MiB",
            self.ops,
            self.dispatches,
            mib(self.planned_activation_bytes),
            mib(self.naive_activation_bytes),
            mib(self.weight_bytes),
            mib(self.state_bytes),
            mib(self.io_bytes)
        )
    }
}

impl Builder {
    /// Plans memory, allocates buffers and records the dispatch list.
    pub fn compile(self, gpu: &Gpu, opts: CompileOptions) -> Result<Compiled> {
        self.check_bindings(gpu)?;
        let Builder { graph, mut bound, .. } = self;
        let plan = Plan::new(&graph, opts.reuse);
        // With reuse the buffers are the device's shared ones (`runtime::pool`): a graph's
        // activations then cost only what its plan needs beyond every other graph's.
        let pool = if opts.reuse {
            gpu.pooled_activations(&plan.buffers)?
        } else {
            let own = |(i, &b): (usize, &u64)| gpu.create_buffer(&format!("activations{i}"), b, runtime::tensor::STORAGE);
            plan.buffers.iter().enumerate().map(own).collect::<runtime::Result<Vec<_>>>()?
        };
        let mut tensors = Vec::with_capacity(graph.tensors.len());
        for id in graph.ids() {
            let d = graph.desc(id);
            let t = match d.kind {
                Kind::Param | Kind::State => {
                    let t = bound.remove(&id).ok_or_else(|| GraphError::Binding {
                        name: d.name.clone(),
                        message: "declared for planning only, no device tensor is bound".into(),
                    })?;
                    if t.shape != d.shape {
                        return Err(GraphError::Binding { name: d.name.clone(), message: format!("bound tensor has shape {:?}", t.shape) });
                    }
                    t
                }
                Kind::Activation => match plan.slot[id.0] {
                    Some(s) => Tensor { buffer: pool[s].clone(), offset: 0, shape: d.shape.clone(), dtype: d.dtype },
                    None => gpu.empty(&d.name, &d.shape, d.dtype)?, // declared but never used by any op
                },
                Kind::Input | Kind::Output => gpu.empty(&d.name, &d.shape, d.dtype)?,
            };
            tensors.push(t);
        }
        let mut b = gpu.program();
        for n in &graph.nodes {
            let args: Vec<&Tensor> = n.args.iter().map(|t| &tensors[t.0]).collect();
            b.push_dyn(n.kernel.clone(), &n.params, &args).map_err(|source| GraphError::Op { op: n.label.clone(), source })?;
        }
        let program = b.build()?;
        Ok(Compiled { graph, plan, tensors, program })
    }
}

impl Compiled {
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    fn id(&self, name: &str) -> Result<TensorId> {
        // The newest tensor of that name, as in the builder.
        self.graph.ids().filter(|&t| self.graph.desc(t).name == name).last().ok_or_else(|| GraphError::UnknownTensor(name.into()))
    }

    /// The device tensor behind `name`.
    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        Ok(&self.tensors[self.id(name)?.0])
    }

    /// Writes host data into an input (or state) tensor before a run.
    pub fn write(&self, gpu: &Gpu, name: &str, data: &[f32]) -> Result<()> {
        Ok(gpu.write(self.tensor(name)?, data)?)
    }

    /// Reads an output (or any tensor whose buffer is still intact) after a run.
    pub fn read(&self, gpu: &Gpu, name: &str) -> Result<Vec<f32>> {
        Ok(gpu.download(self.tensor(name)?)?)
    }

    /// Replaces node `i`'s params for the next runs (timestep, offsets, ranges).
    pub fn set_params<P: bytemuck::Pod>(&mut self, i: usize, params: &P) -> Result<()> {
        Ok(self.program.set_params(i, params)?)
    }

    /// Replays the recorded dispatches: one encoder, one pass, one submit.
    pub fn run(&mut self, gpu: &Gpu) -> Result<()> {
        Ok(self.program.run(gpu)?)
    }

    /// Runs node by node and reads back what each one wrote, by node label:
    /// the way to find the first op that disagrees with a reference.
    pub fn run_debug(&mut self, gpu: &Gpu) -> Result<Vec<(String, Vec<f32>)>> {
        let mut out = Vec::new();
        for (i, n) in self.graph.nodes.iter().enumerate() {
            self.program.run_steps(gpu, i..i + 1)?;
            for t in n.writes() {
                out.push((n.label.clone(), gpu.download(&self.tensors[t.0])?));
            }
        }
        gpu.wait()?;
        Ok(out)
    }

    /// GPU time and arithmetic per node, as (node label, its step's profile).
    pub fn profile(&mut self, gpu: &Gpu) -> Result<Vec<(String, StepTime)>> {
        let times = self.program.profile(gpu)?;
        Ok(self.graph.nodes.iter().zip(times).map(|(n, t)| (n.label.clone(), t)).collect())
    }

    pub fn report(&self) -> Report {
        let sum = |k: &[Kind]| self.graph.tensors.iter().filter(|t| k.contains(&t.kind)).map(|t| t.bytes()).sum();
        Report {
            ops: self.graph.nodes.len(),
            dispatches: self.program.len(),
            planned_activation_bytes: self.plan.planned_bytes(),
            naive_activation_bytes: sum(&[Kind::Activation]),
            weight_bytes: sum(&[Kind::Param]),
            state_bytes: sum(&[Kind::State]),
            io_bytes: sum(&[Kind::Input, Kind::Output]),
        }
    }
}
