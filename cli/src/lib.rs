//! videossm as a library: text-to-video generation ([`generate`]), video outputs,
//! prompt schedules, the browser server ([`serve`]), session snapshots, bundle replay, benchmarks and synthetic models.
pub mod bench;
pub mod bench_compare;
pub mod bench_full;
pub mod error;
pub mod generate;
pub mod output;
pub mod replay;
pub mod replay_t5;
pub mod replay_vae;
pub mod serve;
pub mod soak;
/// Seeded noise and random-weight models (they live in the weights crate, so tests link no CLI).
pub use weights::synthetic;

pub use error::{Error, Result};
pub use generate::{Chunk, Frame, Pipeline, PipelineOptions, Session, SessionState};
/// Prompt schedules and session snapshots are parsed host-side, in the weights crate.
pub use weights::{prompts, snapshot};
