//! PyTorch `.pt/.pth` zip checkpoints, read without running Python or any code
//! from the file: the zip directory, then `data.pkl` through a restricted unpickler,
//! then each tensor's bytes from `data/<key>`.
mod pickle;
mod zip;

use crate::checkpoint::{DType, HostTensor};
use pickle::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn dtype_of(storage: &str) -> Result<DType, String> {
    match storage {
        "FloatStorage" => Ok(DType::F32),
        "HalfStorage" => Ok(DType::F16),
        "BFloat16Storage" => Ok(DType::BF16),
        "LongStorage" => Ok(DType::I64),
        other => Err(format!("storage type {other} is not supported (float32, float16, bfloat16, int64)")),
    }
}

/// Walks nested dicts, naming tensors by their dotted key path.
fn flatten(prefix: &str, v: Value, out: &mut Vec<(String, Value)>) -> Result<(), String> {
    match v {
        Value::Dict(items) => {
            for (k, v) in items {
                let k = match k {
                    Value::Str(s) => s,
                    Value::Int(i) => i.to_string(),
                    other => return Err(format!("dict key {other:?} under {prefix:?} is not a string")),
                };
                let name = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
                flatten(&name, v, out)?;
            }
        }
        t @ Value::Tensor { .. } => out.push((prefix.to_string(), t)),
        // Step counters, configs and other plain values in a checkpoint carry no weights.
        _ => {}
    }
    Ok(())
}

/// Every tensor of a torch zip checkpoint by dotted key.
pub fn read(path: &Path) -> Result<BTreeMap<String, HostTensor>, String> {
    let mut z = zip::Zip::open(path)?;
    let pkl = z.entries.keys().find(|n| n.ends_with("data.pkl")).cloned().ok_or("no data.pkl in the archive")?;
    let root = pkl.trim_end_matches("data.pkl").to_string();
    let value = pickle::load(&z.read(&pkl)?)?;
    let mut found = Vec::new();
    flatten("", value, &mut found)?;
    let mut out = BTreeMap::new();
    for (name, t) in found {
        let Value::Tensor { dtype, key, offset, shape, stride } = t else { unreachable!("flatten keeps tensors only") };
        let dt = dtype_of(&dtype).map_err(|e| format!("{name}: {e}"))?;
        let mut expect = 1u64;
        for (&n, &s) in shape.iter().zip(&stride).rev() {
            if n > 1 && s != expect {
                return Err(format!("{name}: stride {stride:?} of shape {shape:?} is not contiguous"));
            }
            expect = expect.saturating_mul(n);
        }
        let numel: u64 = shape.iter().product();
        let entry = z.entries.get(&format!("{root}data/{key}")).ok_or_else(|| format!("{name}: storage {key} missing from the archive"))?;
        let size = dt.size() as u64;
        let (start, bytes) = (offset.checked_mul(size), numel.checked_mul(size));
        let (start, bytes) = start
            .zip(bytes)
            .filter(|(s, b)| s.checked_add(*b).is_some_and(|e| e <= entry.size))
            .ok_or_else(|| format!("{name}: storage {key} is shorter than the tensor"))?;
        let data = z.read_at(entry.offset + start, bytes)?;
        out.insert(name, HostTensor { shape: shape.iter().map(|&n| n as usize).collect(), dtype: dt, data });
    }
    Ok(out)
}
