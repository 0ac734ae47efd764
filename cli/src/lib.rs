//! videossm as a library: bundle replay now; the generation pipeline builds on it.
pub mod replay;
