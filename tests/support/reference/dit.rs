//! Placeholder: the CPU f64 reference of the dit is being written.
