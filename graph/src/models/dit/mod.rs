//! The causal Wan DiT with VideoSSM's hybrid memory (../shared/spec/MODEL.md, MEMORY.md).
pub mod sampler;
pub mod window;
