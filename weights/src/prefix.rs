//! A prefix-pushing loader in the style of candle's `VarBuilder`, so model code reads
//! like the checkpoint: `vb.pp("blocks").pp(3).get("self_attn.q.weight", &[d, d])`.
//! Every request is recorded; what the model never asked for is reported by
//! [`Loader::finish`], so a checkpoint and a model cannot silently disagree.
use crate::checkpoint::Checkpoint;
use crate::error::{Result, WeightsError};
use crate::tensor::{DType, HostTensor, FLOAT};
use crate::validate::{check_one, Expected, ExpectedTensor, Problem};
use std::cell::RefCell;
use std::collections::HashSet;

pub struct Loader<'a> {
    ck: &'a Checkpoint,
    asked: RefCell<Expected>,
    /// The model's tensor list from its config, the checkpoint was validated against.
    expected: Expected,
    /// Prefixes the model knowingly leaves unread (the memory of a run without it).
    skipped: RefCell<Vec<String>>,
}

#[derive(Clone)]
pub struct Prefix<'a> {
    loader: &'a Loader<'a>,
    prefix: String,
}

impl<'a> Loader<'a> {
    /// Checks `ck` against the model's `expected` tensors (every missing, extra, mis-shaped
    /// and mis-typed one in one error, then NaN/Inf) before anything is read: the one way
    /// every model loads its checkpoint.
    pub fn validated(ck: &'a Checkpoint, expected: Expected) -> Result<Loader<'a>> {
        ck.validate(&expected)?;
        ck.check_finite()?;
        Ok(Loader { ck, asked: RefCell::new(Expected::default()), expected, skipped: RefCell::default() })
    }

    pub fn root(&'a self) -> Prefix<'a> {
        Prefix { loader: self, prefix: String::new() }
    }

    /// What the model read so far, as an expected-tensor list.
    pub fn asked(&self) -> Expected {
        self.asked.borrow().clone()
    }

    /// Ends loading. The model must have read exactly the tensors its config lists (those
    /// under a [`Prefix::skip`] aside): the list and the loading code name the same keys,
    /// and a difference is a bug in one of them, caught by any load.
    pub fn finish(self) {
        let asked = self.asked.into_inner();
        let skipped = self.skipped.into_inner();
        let read: HashSet<(&str, &[usize])> = asked.iter().map(|t| (t.key.as_str(), t.shape.as_slice())).collect();
        let listed: HashSet<(&str, &[usize])> = self
            .expected
            .iter()
            .filter(|t| !skipped.iter().any(|p| t.key.starts_with(p.as_str())))
            .map(|t| (t.key.as_str(), t.shape.as_slice()))
            .collect();
        assert!(
            read == listed,
            "{}: the loader read {:?} beyond the config's list, which has {:?} it never read",
            self.ck.path.display(),
            read.difference(&listed).collect::<Vec<_>>(),
            listed.difference(&read).collect::<Vec<_>>()
        );
    }
}

impl<'a> Prefix<'a> {
    /// One level down: `pp("blocks")`, `pp(3)`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Prefix<'a> {
        Prefix { loader: self.loader, prefix: self.key(name) }
    }

    pub fn key(&self, name: impl std::fmt::Display) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.loader.ck.contains(&self.key(name))
    }

    /// Leaves every tensor under `name` unread on purpose (see [`Loader::finish`]).
    pub fn skip(&self, name: &str) {
        self.loader.skipped.borrow_mut().push(self.key(name));
    }

    /// The float tensor `name` under this prefix, which must have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<&'a HostTensor> {
        self.get_as(name, shape, FLOAT)
    }

    /// As [`Prefix::get`], with the dtypes allowed spelled out (e.g. i64 ids).
    pub fn get_as(&self, name: &str, shape: &[usize], dtypes: &'static [DType]) -> Result<&'a HostTensor> {
        let want = ExpectedTensor { key: self.key(name), shape: shape.to_vec(), dtypes };
        let ck = self.loader.ck;
        match check_one(ck, &want) {
            None => {
                let t = ck.get(&want.key);
                self.loader.asked.borrow_mut().tensors.push(want);
                t
            }
            Some(Problem::Missing { key, .. }) => Err(WeightsError::Missing { path: ck.path.clone(), key }),
            Some(p) => Err(WeightsError::Mismatch { path: ck.path.clone(), problems: vec![p] }),
        }
    }

    /// `Some` if the checkpoint has `name`; absent is not an error (optional biases, memory).
    pub fn get_opt(&self, name: &str, shape: &[usize]) -> Result<Option<&'a HostTensor>> {
        if self.contains(name) {
            self.get(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }
}
