use thiserror::Error;

/// Everything that can go wrong between us and the GPU, with the facts a user needs.
#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error("no usable GPU adapter for backends {backends}. {hint}")]
    NoAdapter { backends: String, hint: String },

    #[error("no adapter matches {wanted:?}; available: {available}")]
    AdapterNotFound { wanted: String, available: String },

    #[error("unknown backend {0:?}: use auto, vulkan, metal, dx12 or gl")]
    UnknownBackend(String),

    #[error("could not open a device on {adapter}: {message}")]
    RequestDevice { adapter: String, message: String },

    #[error("{what}: {requested} bytes requested, the adapter allows {limit}. {hint}")]
    LimitExceeded { what: String, requested: u64, limit: u64, hint: String },

    #[error("shader {label} failed to compile: {message}")]
    Shader { label: String, message: String },

    #[error("GPU validation error in {label}: {message}")]
    Validation { label: String, message: String },

    #[error("tensor {label}: {message}")]
    Tensor { label: String, message: String },

    #[error("reading back {label} failed: {message}")]
    Readback { label: String, message: String },

    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),

    #[error("the GPU ran out of memory{}{}: use a smaller --size, --window or weight dtype, or close other GPU programs",
        if what.is_empty() { String::new() } else { format!(" allocating {what}") },
        bytes.map_or(String::new(), |b| format!(" ({b} bytes)")))]
    OutOfMemory { what: String, bytes: Option<u64> },
}

pub type Result<T> = std::result::Result<T, RuntimeError>;
