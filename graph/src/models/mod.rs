//! The model graphs: the causal DiT generator with its hybrid memory, the umT5
//! text encoder and the Wan VAE decoder.
pub mod dit;
pub mod linear;
pub mod t5;
pub mod vae;
