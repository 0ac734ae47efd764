//! Tier 3: the models end to end against the parity bundles of `../shared/parity`
//! (recorded from the official PyTorch code) and against the f64 model references.
mod memory_model;
mod parity_dit;
mod parity_t5;
mod parity_vae;
mod reference_dit;
