//! Checking a checkpoint against what a model expects, reporting every problem at
//! once: a converted checkpoint is usually wrong in many places for one reason.
use crate::checkpoint::Checkpoint;
use crate::error::{Result, WeightsError};
use crate::tensor::{DType, FLOAT};

#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedTensor {
    pub key: String,
    pub shape: Vec<usize>,
    pub dtypes: &'static [DType],
}

/// The tensors a model reads, plus key prefixes it knowingly ignores (the VAE
/// decoder ignores the encoder half of the autoencoder's state dict).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expected {
    pub tensors: Vec<ExpectedTensor>,
    pub ignored: Vec<String>,
}

impl Expected {
    pub fn push(&mut self, key: impl Into<String>, shape: &[usize], dtypes: &'static [DType]) {
        self.tensors.push(ExpectedTensor { key: key.into(), shape: shape.to_vec(), dtypes });
    }

    /// A weight: any float dtype the kernels read (f32, f16, bf16).
    pub fn float(&mut self, key: impl Into<String>, shape: &[usize]) {
        self.push(key, shape, FLOAT);
    }

    /// `{key}.weight [out, in]` and `{key}.bias [out]`.
    pub fn linear(&mut self, key: &str, out: usize, inp: usize) {
        self.float(format!("{key}.weight"), &[out, inp]);
        self.float(format!("{key}.bias"), &[out]);
    }

    pub fn ignore_prefix(&mut self, prefix: impl Into<String>) {
        self.ignored.push(prefix.into());
    }

    pub fn get(&self, key: &str) -> Option<&ExpectedTensor> {
        self.tensors.iter().find(|t| t.key == key)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ExpectedTensor> {
        self.tensors.iter()
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

impl<'a> IntoIterator for &'a Expected {
    type Item = &'a ExpectedTensor;
    type IntoIter = std::slice::Iter<'a, ExpectedTensor>;
    fn into_iter(self) -> Self::IntoIter {
        self.tensors.iter()
    }
}

/// One way a checkpoint differs from the model.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    Missing { key: String, shape: Vec<usize> },
    Unexpected { key: String, shape: Vec<usize> },
    Shape { key: String, expected: Vec<usize>, got: Vec<usize> },
    DType { key: String, allowed: &'static [DType], got: DType },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing { key, shape } => write!(f, "missing    {key} {shape:?}"),
            Problem::Unexpected { key, shape } => write!(f, "unexpected {key} {shape:?}"),
            Problem::Shape { key, expected, got } => write!(f, "shape      {key}: {got:?} in the file, {expected:?} expected"),
            Problem::DType { key, allowed, got } => {
                let allowed: Vec<String> = allowed.iter().map(|d| d.to_string()).collect();
                write!(f, "dtype      {key}: {got} in the file, {} expected", allowed.join(" or "))
            }
        }
    }
}

/// A tensor holding NaN or Inf.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFinite {
    pub key: String,
    pub first: usize,
    pub count: usize,
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} NaN/Inf values, the first at index {}", self.key, self.count, self.first)
    }
}

/// The problems of one requested tensor, if any.
pub(crate) fn check_one(ck: &Checkpoint, want: &ExpectedTensor) -> Option<Problem> {
    let key = want.key.clone();
    match ck.tensors.get(&want.key) {
        None => Some(Problem::Missing { key, shape: want.shape.clone() }),
        Some(t) if t.shape != want.shape => Some(Problem::Shape { key, expected: want.shape.clone(), got: t.shape.clone() }),
        Some(t) if !want.dtypes.contains(&t.dtype) => Some(Problem::DType { key, allowed: want.dtypes, got: t.dtype }),
        Some(_) => None,
    }
}

impl Checkpoint {
    /// Every missing, mis-shaped, mis-typed and unexpected tensor, in one error.
    pub fn validate(&self, expected: &Expected) -> Result<()> {
        let mut problems: Vec<Problem> = expected.iter().filter_map(|want| check_one(self, want)).collect();
        let known: std::collections::HashSet<&str> = expected.iter().map(|t| t.key.as_str()).collect();
        problems.extend(
            self.tensors
                .iter()
                .filter(|(k, _)| !known.contains(k.as_str()) && !expected.ignored.iter().any(|p| k.starts_with(p.as_str())))
                .map(|(k, t)| Problem::Unexpected { key: k.clone(), shape: t.shape.clone() }),
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(WeightsError::Mismatch { path: self.path.clone(), problems })
        }
    }

    /// Scans every float tensor for NaN/Inf and names each one that has any.
    pub fn check_finite(&self) -> Result<()> {
        let found: Vec<NonFinite> =
            self.views().filter_map(|v| v.non_finite().map(|(first, count)| NonFinite { key: v.name.to_string(), first, count })).collect();
        if found.is_empty() {
            Ok(())
        } else {
            Err(WeightsError::NotFinite { path: self.path.clone(), found })
        }
    }
}
