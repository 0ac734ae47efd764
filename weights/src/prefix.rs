//! A prefix-pushing loader in the style of candle's `VarBuilder`, so model code reads
//! like the checkpoint: `vb.pp("blocks").pp(3).get("self_attn.q.weight", &[d, d])`.
//! Every request is recorded; what the model never asked for is reported by
//! [`Loader::finish`], so a checkpoint and a model cannot silently disagree.
use crate::checkpoint::Checkpoint;
use crate::error::{Result, WeightsError};
use crate::tensor::{DType, HostTensor, FLOAT};
use crate::validate::{check_one, Expected, Problem};
use std::cell::RefCell;
use std::collections::HashSet;

pub struct Loader<'a> {
    ck: &'a Checkpoint,
    asked: RefCell<Expected>,
}

#[derive(Clone)]
pub struct Prefix<'a> {
    loader: &'a Loader<'a>,
    prefix: String,
}

impl<'a> Loader<'a> {
    pub fn new(ck: &'a Checkpoint) -> Loader<'a> {
        Loader { ck, asked: RefCell::new(Expected::default()) }
    }

    pub fn root(&'a self) -> Prefix<'a> {
        Prefix { loader: self, prefix: String::new() }
    }

    /// What the model asked for so far, as an expected-tensor list.
    pub fn asked(&self) -> Expected {
        self.asked.borrow().clone()
    }

    /// Fails listing every tensor of the checkpoint the model never asked for
    /// (the problems of tensors it did ask for were returned by `get` already).
    pub fn finish(self) -> Result<()> {
        let asked: HashSet<String> = self.asked.into_inner().tensors.into_iter().map(|t| t.key).collect();
        let problems: Vec<Problem> = self
            .ck
            .tensors
            .iter()
            .filter(|(k, _)| !asked.contains(k.as_str()))
            .map(|(k, t)| Problem::Unexpected { key: k.clone(), shape: t.shape.clone() })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(WeightsError::Mismatch { path: self.ck.path.clone(), problems })
        }
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

    /// The float tensor `name` under this prefix, which must have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<&'a HostTensor> {
        self.get_as(name, shape, FLOAT)
    }

    /// As [`Prefix::get`], with the dtypes allowed spelled out (e.g. i64 ids).
    pub fn get_as(&self, name: &str, shape: &[usize], dtypes: &'static [DType]) -> Result<&'a HostTensor> {
        let key = self.key(name);
        let mut asked = self.loader.asked.borrow_mut();
        asked.push(key.clone(), shape, dtypes);
        let ck = self.loader.ck;
        match check_one(ck, asked.tensors.last().expect("just pushed")) {
            None => ck.get(&key),
            Some(Problem::Missing { .. }) => Err(WeightsError::Missing { path: ck.path.clone(), key }),
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
