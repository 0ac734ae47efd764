//! The one error type of the videossm library: what went wrong, with the file or
//! value concerned and the allowed range, so the CLI prints it as it is.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user-chosen value outside its range (`what` names the flag or field).
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },

    /// A model folder lacks a file.
    #[error("{}: missing {file} ({what})", dir.display())]
    MissingFile { dir: PathBuf, file: String, what: String },

    /// Reading or writing a file (a full disk shows up here, naming the file).
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error(transparent)]
    Weights(#[from] weights::WeightsError),

    #[error(transparent)]
    Graph(#[from] graph::GraphError),

    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
}

pub type Result<T> = std::result::Result<T, Error>;

pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid { what: what.into(), message: message.into() }
}

/// `map_err(io(path))`: an I/O error naming its file.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
