//! The crate's one error type. Every variant names the file and, where there is one,
//! the tensor key or config field, so a message alone says what to fix.
use crate::tensor::DType;
use crate::validate::{NonFinite, Problem};
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum WeightsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: not a valid checkpoint: {message}")]
    Format { path: PathBuf, message: String },

    #[error("{path}: {what} is {requested}, above the limit of {limit}: {hint}")]
    LimitExceeded { path: PathBuf, what: &'static str, requested: u64, limit: u64, hint: &'static str },

    #[error("{path}: tensor {key}: {dtype} is not a supported dtype (f64, f32, f16, bf16, i64, i32, i16, i8, u8, bool)")]
    UnsupportedDtype { path: PathBuf, key: String, dtype: String },

    #[error("{path}: tensor {key}: {shape:?} of {dtype} needs {expected} bytes, the file gives it {got}")]
    SizeMismatch { path: PathBuf, key: String, shape: Vec<usize>, dtype: DType, expected: u64, got: u64 },

    #[error("{path}: tensor {key}: bytes {start}..{end} lie outside its {limit}-byte data region")]
    OutOfBounds { path: PathBuf, key: String, start: u64, end: u64, limit: u64 },

    #[error("{path}: tensor {key}: stride {stride:?} of shape {shape:?} is not contiguous (save it with .contiguous())")]
    NonContiguous { path: PathBuf, key: String, shape: Vec<u64>, stride: Vec<u64> },

    #[error("{path}: data.pkl byte {offset}: {message}")]
    Pickle { path: PathBuf, offset: usize, message: String },

    #[error("{path}: refusing global {global}: a checkpoint may hold only tensors and plain containers, and no code is ever run")]
    RefusedGlobal { path: PathBuf, global: String },

    #[error("{path}: tensor {key} is missing")]
    Missing { path: PathBuf, key: String },

    #[error("{path}: tensor {key} appears twice ({first} and {second})")]
    Duplicate { path: PathBuf, key: String, first: String, second: String },

    #[error("{path}: checkpoint does not match the model ({} problems):\n{}", problems.len(), list(problems))]
    Mismatch { path: PathBuf, problems: Vec<Problem> },

    #[error("{path}: non-finite values:\n{}", list(found))]
    NotFinite { path: PathBuf, found: Vec<NonFinite> },

    #[error("{path}: field {field}: {message}")]
    Config { path: PathBuf, field: String, message: String },

    /// A prompt schedule line that does not parse (line 0: the file as a whole).
    #[error("{path}:{line}: {message}")]
    PromptFile { path: PathBuf, line: usize, message: String },

    #[error("{path}: not a usable videossm snapshot: {message}")]
    Snapshot { path: PathBuf, message: String },
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

pub type Result<T> = std::result::Result<T, WeightsError>;

pub(crate) fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> WeightsError + '_ {
    move |source| WeightsError::Io { path: path.to_path_buf(), source }
}
