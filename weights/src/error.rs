use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum WeightsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: not a valid safetensors file: {message}")]
    Format { path: PathBuf, message: String },

    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("{path}: tensor {key} is missing")]
    Missing { path: PathBuf, key: String },

    #[error("{path}: checkpoint does not match the model:\n{}", problems.join("\n"))]
    Mismatch { path: PathBuf, problems: Vec<String> },

    #[error("{path}: tensor {key} holds {bad} non-finite values (first at index {first})")]
    NotFinite { path: PathBuf, key: String, bad: usize, first: usize },
}

pub type Result<T> = std::result::Result<T, WeightsError>;
