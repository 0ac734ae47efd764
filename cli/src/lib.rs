//! videossm as a library: bundle replay, benchmarks, and synthetic models.
pub mod bench;
pub mod replay;
pub mod replay_vae;
pub mod replay_t5;
pub mod snapshot;
pub mod synthetic;
