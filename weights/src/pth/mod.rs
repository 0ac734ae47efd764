//! PyTorch `.pt/.pth` zip checkpoints, read without running Python or any code
//! from the file: the zip directory, then `data.pkl` through a restricted unpickler,
//! then each tensor's bytes from `data/<key>`.
mod pickle;
mod zip;

use crate::checkpoint::Stored;
use crate::error::{Result, WeightsError};
use crate::limits::{check_tensor_count, MAX_PICKLE, MAX_SHARING};
use crate::tensor::HostTensor;
use pickle::{TensorRef, Value};
use std::collections::BTreeMap;
use std::path::Path;

fn format(path: &Path, message: String) -> WeightsError {
    WeightsError::Format { path: path.to_path_buf(), message }
}

/// Walks nested dicts, naming tensors by their dotted key path.
fn flatten(path: &Path, prefix: &str, v: Value, out: &mut Vec<(String, TensorRef)>) -> Result<()> {
    match v {
        Value::Dict(d) => {
            for (k, v) in d.items {
                let k = match k {
                    Value::Str(s) => s,
                    Value::Int(i) => i.to_string(),
                    other => return Err(format(path, format!("dict key {other:?} under {prefix:?} is not a string"))),
                };
                let name = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
                flatten(path, &name, v, out)?;
            }
        }
        Value::Tensor(t) => out.push((prefix.to_string(), t)),
        // Step counters, configs and other plain values in a checkpoint carry no weights.
        _ => {}
    }
    Ok(())
}

fn check_contiguous(path: &Path, key: &str, t: &TensorRef) -> Result<()> {
    let mut expect = 1u64;
    for (&n, &s) in t.shape.iter().zip(&t.stride).rev() {
        // A dimension of size 1 may carry any stride.
        if n > 1 && s != expect {
            return Err(WeightsError::NonContiguous {
                path: path.into(),
                key: key.into(),
                shape: t.shape.clone(),
                stride: t.stride.clone(),
            });
        }
        expect = expect.saturating_mul(n);
    }
    Ok(())
}

/// Every tensor of a torch zip checkpoint by dotted key; with `lazy`, their data are
/// left in the file (empty `data`) and their places recorded in `stored`.
pub fn read(path: &Path, lazy: bool, stored: &mut BTreeMap<String, Stored>) -> Result<BTreeMap<String, HostTensor>> {
    let mut z = zip::Zip::open(path)?;
    // torch.save names the top folder after the file; data.pkl sits in it.
    let pkl = z
        .entries
        .keys()
        .find(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
        .cloned()
        .ok_or_else(|| format(path, "no data.pkl in the archive".into()))?;
    let root = pkl.trim_end_matches("data.pkl").to_string();
    let size = z.entries[&pkl].size;
    if size > MAX_PICKLE {
        let hint = "a state dict pickle is kilobytes; this one is not a plain state dict";
        return Err(WeightsError::LimitExceeded { path: path.into(), what: "data.pkl size", requested: size, limit: MAX_PICKLE, hint });
    }
    let bytes = z.read_at(z.entries[&pkl].offset, size)?;
    let mut found = Vec::new();
    flatten(path, "", pickle::load(path, &bytes)?, &mut found)?;
    check_tensor_count(path, found.len())?;
    let budget = z.len.saturating_mul(MAX_SHARING);
    let mut total = 0u64;
    let mut out = BTreeMap::new();
    for (key, t) in found {
        check_contiguous(path, &key, &t)?;
        let entry = z
            .entries
            .get(&format!("{root}data/{}", t.key))
            .ok_or_else(|| format(path, format!("tensor {key}: storage data/{} is not in the archive", t.key)))?;
        let size = t.dtype.size() as u64;
        let numel = t.shape.iter().try_fold(1u64, |a, &n| a.checked_mul(n));
        let (start, len) = (t.offset.checked_mul(size), numel.and_then(|n| n.checked_mul(size)));
        let (start, len) = start.zip(len).filter(|(s, l)| s.checked_add(*l).is_some_and(|e| e <= entry.size)).ok_or_else(|| {
            let start = t.offset.saturating_mul(size);
            WeightsError::OutOfBounds {
                path: path.into(),
                key: key.clone(),
                start,
                end: start.saturating_add(numel.unwrap_or(u64::MAX).saturating_mul(size)),
                limit: entry.size,
            }
        })?;
        total += len;
        if total > budget {
            let hint = "tensors share storages far more than tied weights would";
            return Err(WeightsError::LimitExceeded { path: path.into(), what: "tensor bytes", requested: total, limit: budget, hint });
        }
        let data = if lazy {
            stored.insert(key.clone(), Stored { file: path.to_path_buf(), offset: entry.offset + start });
            Vec::new()
        } else {
            z.read_at(entry.offset + start, len)?
        };
        let shape = t.shape.iter().map(|&n| n as usize).collect();
        if out.insert(key.clone(), HostTensor { shape, dtype: t.dtype, data }).is_some() {
            return Err(WeightsError::Duplicate { path: path.into(), key, first: "data.pkl".into(), second: "data.pkl".into() });
        }
    }
    Ok(out)
}
