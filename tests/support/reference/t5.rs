//! Placeholder: the CPU f64 reference of the t5 is being written.
