//! Placeholder: the CPU f64 reference of the vae is being written.
