use thiserror::Error;

#[derive(Debug, Error)]
pub enum GraphError {
    #[error("op {op}: {message}")]
    Shape { op: String, message: String },

    #[error("graph has no tensor named {0:?}")]
    UnknownTensor(String),

    #[error("tensor {name}: {message}")]
    Binding { name: String, message: String },

    #[error("{0}")]
    Session(String),

    /// A model input that does not fit the graph built for it.
    #[error("{what} has shape {got:?}, expected {expected}: {hint}")]
    InputShape { what: String, got: Vec<usize>, expected: String, hint: String },

    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
}

pub type Result<T> = std::result::Result<T, GraphError>;
