//! Kernel specs and the pipeline cache.
//!
//! A kernel family is a WGSL file plus a spec struct implementing [`Kernel`]: the
//! spec's `Display` is both its cache key and its wgpu label, so profiles and
//! validation errors name the exact variant. Binding 0 is always the `Params`
//! uniform (dynamic offset); bindings 1.. are storage buffers in `bindings()` order.
use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use crate::tensor::DType;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex};

/// How a kernel touches one storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// Field names and byte offsets of a params struct declared with [`params!`](crate::params),
/// for the tier-1 test that each WGSL `struct Params` mirrors its Rust twin.
pub trait ParamsLayout: bytemuck::Pod {
    const FIELDS: &'static [(&'static str, usize)];
}

/// Declares a kernel's uniform params struct: `#[repr(C)]`, plain old data (Pod, Copy,
/// Debug) and its [`ParamsLayout`]; further attributes (`Default`, docs) pass through.
#[macro_export]
macro_rules! params {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }

        impl $crate::pipeline::ParamsLayout for $name {
            const FIELDS: &'static [(&'static str, usize)] = &[$((stringify!($f), std::mem::offset_of!($name, $f))),*];
        }
    };
}

pub trait Kernel: Display {
    /// Uniform parameters, declared with [`params!`](crate::params) and mirrored field for
    /// field by the WGSL `struct Params`.
    type Params: ParamsLayout;

    /// The specialised WGSL of this variant.
    fn wgsl(&self) -> String;

    /// Storage bindings 1..=n, in declaration order.
    fn bindings(&self) -> Vec<Access>;

    /// Workgroup counts for one dispatch with `params`.
    fn workgroups(&self, params: &Self::Params) -> [u32; 3];

    /// Checks `params` against the bound tensors (dtype, element count; binding order) so
    /// that no index the kernel computes leaves its tensor. Run whenever a dispatch is
    /// recorded or its params change, in every build: release builds create unchecked
    /// shader modules, where an out-of-range access is not clamped. Families whose
    /// indexing the graph's shapes already bound keep the default.
    fn check(&self, _params: &Self::Params, _operands: &[(DType, usize)]) -> Result<()> {
        Ok(())
    }

    /// Floating-point operations of one dispatch (an FMA counts two), for the achieved
    /// TFLOP/s of `bench --full`. Families bound by memory traffic rather than arithmetic
    /// (copies, norms, elementwise) keep the default and are reported by time only.
    fn flops(&self, _params: &Self::Params, _operands: &[(DType, usize)]) -> f64 {
        0.0
    }
}

/// Object-safe view of a [`Kernel`], so graphs can hold heterogeneous ops.
pub trait AnyKernel: Send + Sync {
    fn label(&self) -> String;
    fn wgsl(&self) -> String;
    fn bindings(&self) -> Vec<Access>;
    fn params_size(&self) -> usize;
    /// Workgroups for params given as raw bytes of `Self::Params`.
    fn workgroups_raw(&self, params: &[u8]) -> [u32; 3];
    /// [`Kernel::check`] for params given as raw bytes.
    fn check_raw(&self, params: &[u8], operands: &[(DType, usize)]) -> Result<()>;
    /// [`Kernel::flops`] for params given as raw bytes.
    fn flops_raw(&self, params: &[u8], operands: &[(DType, usize)]) -> f64;
}

impl<K: Kernel + Send + Sync> AnyKernel for K {
    fn label(&self) -> String {
        self.to_string()
    }
    fn wgsl(&self) -> String {
        Kernel::wgsl(self)
    }
    fn bindings(&self) -> Vec<Access> {
        Kernel::bindings(self)
    }
    fn params_size(&self) -> usize {
        std::mem::size_of::<K::Params>()
    }
    fn workgroups_raw(&self, params: &[u8]) -> [u32; 3] {
        self.workgroups(&bytemuck::pod_read_unaligned(params))
    }
    fn check_raw(&self, params: &[u8], operands: &[(DType, usize)]) -> Result<()> {
        self.check(&bytemuck::pod_read_unaligned(params), operands)
    }
    fn flops_raw(&self, params: &[u8], operands: &[(DType, usize)]) -> f64 {
        self.flops(&bytemuck::pod_read_unaligned(params), operands)
    }
}

/// A compiled variant: pipeline plus the layout its bind groups are made from.
pub struct Pipeline {
    pub label: String,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub bindings: Vec<Access>,
    pub params_size: u64,
}

#[derive(Default)]
pub(crate) struct PipelineCache(Mutex<HashMap<String, Arc<Pipeline>>>);

impl Gpu {
    /// The pipeline for `kernel`, compiled on first use.
    pub fn pipeline(&self, kernel: &dyn AnyKernel) -> Result<Arc<Pipeline>> {
        let label = kernel.label();
        if let Some(p) = self.pipelines.0.lock().expect("pipeline cache poisoned").get(&label) {
            return Ok(p.clone());
        }
        let wgsl = kernel.wgsl();
        if let Ok(dir) = std::env::var("VIDEOSSM_DUMP_WGSL") {
            let path = std::path::Path::new(&dir).join(format!("{label}.wgsl"));
            if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, &wgsl)) {
                log::warn!("could not dump {}: {e}", path.display());
            }
        }
        let p = Arc::new(self.compile(&label, &wgsl, kernel.bindings(), kernel.params_size() as u64)?);
        self.pipelines.0.lock().expect("pipeline cache poisoned").insert(label, p.clone());
        Ok(p)
    }

    fn compile(&self, label: &str, wgsl: &str, bindings: Vec<Access>, params_size: u64) -> Result<Pipeline> {
        // naga's messages carry source spans; wgpu's error scope would only say "invalid module".
        crate::shader::validate(label, wgsl).map_err(|message| RuntimeError::Shader { label: label.into(), message })?;
        self.check_lost()?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let desc = wgpu::ShaderModuleDescriptor { label: Some(label), source: wgpu::ShaderSource::Wgsl(wgsl.into()) };
        let module = if self.checked_shaders {
            self.device.create_shader_module(desc)
        } else {
            // SAFETY: every index the kernels compute is bounded by their params, which
            // the Rust specs derive from tensor shapes checked against binding sizes;
            // the test suite runs the same kernels with bounds checks on (debug builds).
            unsafe { self.device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
        };
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: wgpu::BufferSize::new(params_size.max(4)),
            },
            count: None,
        }];
        entries.extend(bindings.iter().enumerate().map(|(i, a)| wgpu::BindGroupLayoutEntry {
            binding: i as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: *a == Access::Read },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }));
        let layout = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries });
        let pl = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: Some(&pl),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(RuntimeError::Shader { label: label.into(), message: e.to_string() });
        }
        Ok(Pipeline { label: label.into(), pipeline, layout, bindings, params_size })
    }
}
