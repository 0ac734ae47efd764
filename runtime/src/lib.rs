//! The videossm runtime: one device, typed tensors, WGSL kernel families with
//! their CPU references, and recorded dispatch lists.
pub mod device;
pub mod dispatch;
pub mod error;
pub mod kernels;
pub mod pipeline;
pub mod pool;
pub mod shader;
pub mod tensor;

pub use device::{list_adapters, AdapterReport, Capabilities, CoopMatrix, DeviceKind, Gpu, GpuMemory, GpuOptions};
pub use dispatch::{Program, ProgramBuilder, StepTime};
pub use error::{Result, RuntimeError};
pub use pipeline::{Access, AnyKernel, Kernel, ParamsLayout, Pipeline};
pub use shader::Defines;
pub use tensor::{DType, Tensor};
