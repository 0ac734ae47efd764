//! Checkpoint loading, dtypes, model configs and validation for videossm, and the other
//! files it reads from users: prompt schedules and session snapshots.
//! Independent of the GPU: everything here is host memory and plain files.
pub mod checkpoint;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod inspect;
pub mod limits;
pub mod official;
pub mod prefix;
pub mod prompts;
mod pth;
mod safetensors_file;
pub mod snapshot;
pub mod synthetic;
pub mod tensor;
pub mod validate;
pub mod write;

pub use checkpoint::Checkpoint;
pub use config::{DitConfig, GenerationConfig, MemoryType, T5Config, VaeConfig, VaeUpsample};
pub use error::{Result, WeightsError};
pub use inspect::{detect, inspect, Kind, Summary};
pub use prefix::{Loader, Prefix};
pub use tensor::{DType, HostTensor, TensorView, FLOAT};
pub use validate::{Expected, ExpectedTensor, NonFinite, Problem};
