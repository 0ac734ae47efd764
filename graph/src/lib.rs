//! videossm's static graph executor: a model is built once per configuration and
//! shape into a graph of kernel invocations, its activation memory is planned from
//! lifetimes, and the dispatch list is recorded once and replayed for every chunk.
pub mod builder;
pub mod error;
pub mod executor;
pub mod ir;
pub mod models;
pub mod ops;
pub mod plan;
pub mod schedule;

pub use builder::Builder;
pub use error::{GraphError, Result};
pub use executor::{CompileOptions, Compiled, Report};
pub use ir::{Graph, Kind, TensorId};
