//! Model and generation settings read from JSON, each checked with errors that name
//! the file, the field and the allowed range.
mod dit;
mod generation;
mod t5;
mod vae;

pub use dit::{DitConfig, MemoryType};
pub use generation::GenerationConfig;
pub use t5::T5Config;
pub use vae::{VaeConfig, VaeUpsample};

use crate::error::{io, Result, WeightsError};
use serde::Deserialize;
use std::path::Path;

/// Widths and counts beyond this are not a model but an attempt to overflow the
/// shape arithmetic (full-size umT5 has the largest: vocab 256384).
pub(crate) const MAX_DIM: usize = 1 << 22;

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let len = std::fs::metadata(path).map_err(io(path))?.len();
    if len > crate::limits::MAX_HEADER {
        let hint = "a config is a few hundred bytes";
        return Err(WeightsError::LimitExceeded {
            path: path.into(),
            what: "config size",
            requested: len,
            limit: crate::limits::MAX_HEADER,
            hint,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| {
        // serde names a missing or mistyped field between backticks.
        let msg = e.to_string();
        let field = msg.split('`').nth(1).unwrap_or("(file)").to_string();
        WeightsError::Config { path: path.into(), field, message: msg }
    })
}

/// Collects a config's field checks so each names its field and allowed range.
pub(crate) struct Checker<'a> {
    pub path: &'a Path,
}

impl Checker<'_> {
    pub fn ensure(&self, ok: bool, field: &str, message: impl FnOnce() -> String) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(WeightsError::Config { path: self.path.into(), field: field.into(), message: message() })
        }
    }

    /// `value` must lie in `1..=MAX_DIM`.
    pub fn size(&self, value: usize, field: &str) -> Result<()> {
        self.ensure((1..=MAX_DIM).contains(&value), field, || format!("{value} is outside 1..={MAX_DIM}"))
    }
}
