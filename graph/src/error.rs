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

    /// A model input that does not fit the model or the graph built for it.
    #[error("input {input}: {message}")]
    Input { input: String, message: String },

    #[error(transparent)]
    Weights(#[from] weights::WeightsError),

    #[error(transparent)]
    Tokenizer(#[from] crate::models::t5::TokenizerError),

    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),

    /// The runtime refused one op of a graph (its params, bindings or the adapter's
    /// limits); the typed cause is kept for callers that act on it (`LimitExceeded`).
    #[error("op {op}: {source}")]
    Op { op: String, source: runtime::RuntimeError },
}

impl GraphError {
    pub fn input(input: &str, message: String) -> GraphError {
        GraphError::Input { input: input.into(), message }
    }
}

pub type Result<T> = std::result::Result<T, GraphError>;
