//! Recorded dispatch lists: resolve pipelines and bind groups once, then replay.
//!
//! A [`Program`] is a flat list of steps sharing one uniform buffer: every step's
//! params sit at their own aligned dynamic offset. `run()` is one encoder, one
//! compute pass, one submit; between runs only params change (`set_params`).
use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use crate::pipeline::{Access, AnyKernel, Kernel, Pipeline};
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

pub struct Step {
    pub label: String,
    /// Kept so that new params can recompute the workgroup count and be checked.
    kernel: Arc<dyn AnyKernel>,
    /// (dtype, elements) of each bound tensor, for [`AnyKernel::check_raw`].
    operands: Vec<(DType, usize)>,
    pipeline: Arc<Pipeline>,
    bind_group: wgpu::BindGroup,
    params_offset: u32,
    workgroups: [u32; 3],
}

/// One step's share of a [`Program::profile`].
#[derive(Clone, Debug, PartialEq)]
pub struct StepTime {
    /// The kernel variant (its pipeline label).
    pub kernel: String,
    pub ms: f64,
    /// [`crate::Kernel::flops`] of the step's params: 0 for families not counted.
    pub flops: f64,
}

impl StepTime {
    /// The kernel family: the variant label up to its first `_` (`matmul`, `attention`, …).
    pub fn family(&self) -> &str {
        self.kernel.split('_').next().unwrap_or(&self.kernel)
    }
}

/// A step before the shared params buffer exists.
struct Pending {
    kernel: Arc<dyn AnyKernel>,
    pipeline: Arc<Pipeline>,
    tensors: Vec<Tensor>,
    operands: Vec<(DType, usize)>,
    params_offset: u32,
    workgroups: [u32; 3],
}

/// Steps being collected; [`ProgramBuilder::build`] makes the params buffer and bind groups.
pub struct ProgramBuilder<'g> {
    gpu: &'g Gpu,
    steps: Vec<Pending>,
    params: Vec<u8>,
}

pub struct Program {
    steps: Vec<Step>,
    max_workgroups: u32,
    params: Vec<u8>,
    params_buffer: Arc<wgpu::Buffer>,
    dirty: bool,
}

impl Gpu {
    pub fn program(&self) -> ProgramBuilder<'_> {
        ProgramBuilder { gpu: self, steps: Vec::new(), params: Vec::new() }
    }

    /// Runs one kernel once and waits: for tests and one-off work.
    pub fn run<K: Kernel + Clone + Send + Sync + 'static>(&self, kernel: &K, params: &K::Params, tensors: &[&Tensor]) -> Result<()> {
        let mut b = self.program();
        b.push(kernel, params, tensors)?;
        b.build()?.run(self)?;
        self.wait()
    }
}

fn checked_workgroups(gpu: &Gpu, kernel: &dyn AnyKernel, params: &[u8]) -> Result<[u32; 3]> {
    check_grid(&kernel.label(), kernel.workgroups_raw(params), gpu.limits.max_compute_workgroups_per_dimension)
}

fn check_grid(label: &str, workgroups: [u32; 3], max: u32) -> Result<[u32; 3]> {
    match workgroups.iter().find(|&&w| w > max) {
        Some(&w) => Err(RuntimeError::LimitExceeded {
            what: format!("{label} workgroups {workgroups:?}"),
            requested: w as u64,
            limit: max as u64,
            hint: "the kernel must split this dispatch".into(),
        }),
        None => Ok(workgroups),
    }
}

/// Rejects the one usage conflict WebGPU forbids inside a dispatch: a buffer bound
/// writable together with any other binding of the same buffer.
fn check_aliasing(label: &str, bindings: &[Access], tensors: &[&Tensor]) -> Result<()> {
    for (i, (a, t)) in bindings.iter().zip(tensors).enumerate() {
        for (b, u) in bindings.iter().zip(tensors).skip(i + 1) {
            if Arc::ptr_eq(&t.buffer, &u.buffer) && (*a == Access::ReadWrite || *b == Access::ReadWrite) {
                return Err(RuntimeError::Validation {
                    label: label.into(),
                    message: "a buffer is bound writable and again in the same dispatch; give the output its own buffer".into(),
                });
            }
        }
    }
    Ok(())
}

impl ProgramBuilder<'_> {
    /// Appends a dispatch of `kernel` over `tensors` (in the kernel's binding order);
    /// returns the step index for [`Program::set_params`].
    pub fn push<K: Kernel + Clone + Send + Sync + 'static>(
        &mut self,
        kernel: &K,
        params: &K::Params,
        tensors: &[&Tensor],
    ) -> Result<usize> {
        self.push_dyn(Arc::new(kernel.clone()), bytemuck::bytes_of(params), tensors)
    }

    /// [`push`](Self::push) for a type-erased kernel with its params as bytes.
    pub fn push_dyn(&mut self, kernel: Arc<dyn AnyKernel>, params: &[u8], tensors: &[&Tensor]) -> Result<usize> {
        let gpu = self.gpu;
        assert_eq!(params.len(), kernel.params_size(), "params of {}", kernel.label());
        let pipeline = gpu.pipeline(kernel.as_ref())?;
        let label = &pipeline.label;
        if tensors.len() != pipeline.bindings.len() {
            return Err(RuntimeError::Validation {
                label: label.clone(),
                message: format!("{} tensors bound, the kernel declares {}", tensors.len(), pipeline.bindings.len()),
            });
        }
        for t in tensors {
            gpu.check_binding(label, t.bytes())?;
            if t.offset % gpu.storage_alignment() != 0 {
                return Err(RuntimeError::Validation {
                    label: label.clone(),
                    message: format!("tensor offset {} is not {}-aligned", t.offset, gpu.storage_alignment()),
                });
            }
        }
        check_aliasing(label, &pipeline.bindings, tensors)?;
        let operands: Vec<(DType, usize)> = tensors.iter().map(|t| (t.dtype, t.numel())).collect();
        kernel.check_raw(params, &operands)?;
        let workgroups = checked_workgroups(gpu, kernel.as_ref(), params)?;
        let align = gpu.uniform_alignment() as usize;
        let params_offset = self.params.len().div_ceil(align) * align;
        self.params.resize(params_offset, 0);
        self.params.extend_from_slice(params);
        let tensors = tensors.iter().map(|t| (*t).clone()).collect();
        self.steps.push(Pending { kernel, pipeline, tensors, operands, params_offset: params_offset as u32, workgroups });
        Ok(self.steps.len() - 1)
    }

    pub fn build(self) -> Result<Program> {
        let gpu = self.gpu;
        let size = (self.params.len() as u64).max(gpu.uniform_alignment());
        let params_buffer = gpu.create_buffer("params", size, wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST)?;
        let steps = self
            .steps
            .into_iter()
            .map(|s| {
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &params_buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(s.pipeline.params_size.max(4)),
                    }),
                }];
                entries.extend(
                    s.tensors.iter().enumerate().map(|(i, t)| wgpu::BindGroupEntry { binding: i as u32 + 1, resource: t.binding() }),
                );
                let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(&s.pipeline.label),
                    layout: &s.pipeline.layout,
                    entries: &entries,
                });
                Step {
                    label: s.pipeline.label.clone(),
                    operands: s.operands,
                    kernel: s.kernel,
                    pipeline: s.pipeline,
                    bind_group,
                    params_offset: s.params_offset,
                    workgroups: s.workgroups,
                }
            })
            .collect();
        Ok(Program {
            steps,
            max_workgroups: gpu.limits.max_compute_workgroups_per_dimension,
            params: self.params,
            params_buffer,
            dirty: true,
        })
    }
}

impl Program {
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Replaces step `i`'s params (and so its workgroup count); uploaded with the next run.
    pub fn set_params<P: bytemuck::Pod>(&mut self, i: usize, params: &P) -> Result<()> {
        self.set_params_raw(i, bytemuck::bytes_of(params))
    }

    pub fn set_params_raw(&mut self, i: usize, bytes: &[u8]) -> Result<()> {
        let s = &mut self.steps[i];
        s.kernel.check_raw(bytes, &s.operands)?;
        s.workgroups = check_grid(&s.label, s.kernel.workgroups_raw(bytes), self.max_workgroups)?;
        let off = self.steps[i].params_offset as usize;
        assert_eq!(bytes.len() as u64, self.steps[i].pipeline.params_size, "params type of step {}", self.steps[i].label);
        self.params[off..off + bytes.len()].copy_from_slice(bytes);
        self.dirty = true;
        Ok(())
    }

    /// Records every step into `pass`.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        for s in &self.steps {
            Self::record_step(s, pass);
        }
    }

    fn record_step(s: &Step, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&s.pipeline.pipeline);
        pass.set_bind_group(0, &s.bind_group, &[s.params_offset]);
        let [x, y, z] = s.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }

    /// Uploads changed params (before recording into someone else's encoder).
    pub fn flush(&mut self, gpu: &Gpu) {
        if self.dirty {
            gpu.queue.write_buffer(&self.params_buffer, 0, &self.params);
            self.dirty = false;
        }
    }

    /// One encoder, one pass, one submit. Does not wait.
    pub fn run(&mut self, gpu: &Gpu) -> Result<()> {
        self.run_steps(gpu, 0..self.steps.len())
    }

    /// Submits a sub-range of the steps (debug mode runs them one at a time).
    pub fn run_steps(&mut self, gpu: &Gpu, range: std::ops::Range<usize>) -> Result<()> {
        self.flush(gpu);
        let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("program") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("program"), timestamp_writes: None });
            for s in &self.steps[range] {
                Self::record_step(s, &mut pass);
            }
        }
        gpu.queue.submit([enc.finish()]);
        Ok(())
    }

    /// Runs each step in its own pass with timestamps around it; returns each step's
    /// GPU time and arithmetic. Needs the adapter's timestamp queries.
    pub fn profile(&mut self, gpu: &Gpu) -> Result<Vec<StepTime>> {
        if !gpu.caps.timestamps {
            return Err(RuntimeError::Validation { label: "profile".into(), message: "this adapter has no timestamp queries".into() });
        }
        self.flush(gpu);
        let n = self.steps.len() as u32;
        let set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profile"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * n.max(1),
        });
        let bytes = 16 * n.max(1) as u64;
        let resolve = gpu.create_buffer("profile", bytes, wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC)?;
        let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
        for (i, s) in self.steps.iter().enumerate() {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(&s.label),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &set,
                    beginning_of_pass_write_index: Some(2 * i as u32),
                    end_of_pass_write_index: Some(2 * i as u32 + 1),
                }),
            });
            Self::record_step(s, &mut pass);
        }
        enc.resolve_query_set(&set, 0..2 * n, &resolve, 0);
        gpu.queue.submit([enc.finish()]);
        let raw = gpu.read_bytes("profile", &resolve, 0, bytes)?;
        let ticks: &[u64] = bytemuck::cast_slice(&raw);
        let period = gpu.queue.get_timestamp_period() as f64;
        Ok(self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let off = s.params_offset as usize;
                StepTime {
                    kernel: s.label.clone(),
                    ms: ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period / 1e6,
                    flops: s.kernel.flops_raw(&self.params[off..off + s.kernel.params_size()], &s.operands),
                }
            })
            .collect())
    }
}
