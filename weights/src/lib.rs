//! Checkpoint loading, dtypes, model configs and validation for videossm.
pub mod checkpoint;
pub mod config;
pub mod error;
mod pth;

pub use checkpoint::{Checkpoint, DType, HostTensor};
pub use config::{DitConfig, GenerationConfig};
pub use error::{Result, WeightsError};
