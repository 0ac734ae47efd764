//! Straightforward f64 CPU implementations of the models, written from ../shared/spec
//! independently of the runtime: the references the GPU graphs are tested against.
pub mod dit;
pub mod t5;
pub mod vae;
