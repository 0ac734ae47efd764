//! videossm as a library: bundle replay, benchmarks, and synthetic models.
pub mod bench;
pub mod replay;
pub mod replay_vae;
pub mod snapshot;
pub mod synthetic;
