//! A `.safetensors` reader that parses the header itself so it can bound every
//! request before allocating, then reads each tensor straight from the file
//! (no whole-file buffer: an 11 GB checkpoint costs 11 GB, not 22).
use crate::checkpoint::Stored;
use crate::error::{io, Result, WeightsError};
use crate::limits::{check_tensor_count, MAX_HEADER};
use crate::tensor::{DType, HostTensor};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

#[derive(Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// A tensor's place in the data section, checked against the file.
struct Located {
    key: String,
    shape: Vec<usize>,
    dtype: DType,
    start: u64,
    len: u64,
}

fn format(path: &Path, message: String) -> WeightsError {
    WeightsError::Format { path: path.to_path_buf(), message }
}

/// Bytes a tensor of `shape` and `dtype` occupies, or None on overflow.
pub(crate) fn byte_len(shape: &[usize], dtype: DType) -> Option<u64> {
    shape.iter().try_fold(dtype.size() as u64, |acc, &n| acc.checked_mul(n as u64))
}

fn locate(path: &Path, header: &[u8], data_len: u64) -> Result<Vec<Located>> {
    let map: HashMap<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| format(path, format!("header is not a JSON object: {e}")))?;
    check_tensor_count(path, map.len())?;
    let mut out = Vec::with_capacity(map.len());
    let mut total = 0u64;
    for (key, value) in map {
        if key == "__metadata__" {
            continue;
        }
        let e: Entry = serde_json::from_value(value).map_err(|e| format(path, format!("tensor {key}: {e}")))?;
        let dtype = DType::from_safetensors(&e.dtype).ok_or_else(|| WeightsError::UnsupportedDtype {
            path: path.into(),
            key: key.clone(),
            dtype: e.dtype.clone(),
        })?;
        let [start, end] = e.data_offsets;
        if start > end || end > data_len {
            return Err(WeightsError::OutOfBounds { path: path.into(), key, start, end, limit: data_len });
        }
        let expected = byte_len(&e.shape, dtype).unwrap_or(u64::MAX);
        if expected != end - start {
            return Err(WeightsError::SizeMismatch { path: path.into(), key, shape: e.shape, dtype, expected, got: end - start });
        }
        total += end - start;
        out.push(Located { key, shape: e.shape, dtype, start, len: end - start });
    }
    // Ranges may not overlap, so together they fit the data section; without this a
    // tiny file could name one range a million times and ask for terabytes.
    if total > data_len {
        let hint = "tensors overlap in the data section";
        return Err(WeightsError::LimitExceeded {
            path: path.into(),
            what: "sum of tensor bytes",
            requested: total,
            limit: data_len,
            hint,
        });
    }
    out.sort_by_key(|t| t.start);
    Ok(out)
}

/// Reads every tensor of `path` into `into`; a key already there is a duplicate. With
/// `lazy`, their data are left in the file (empty `data`) and their places recorded in `stored`.
pub fn read(path: &Path, into: &mut BTreeMap<String, HostTensor>, lazy: bool, stored: &mut BTreeMap<String, Stored>) -> Result<()> {
    let mut file = File::open(path).map_err(io(path))?;
    let file_len = file.metadata().map_err(io(path))?.len();
    let mut len = [0u8; 8];
    if file_len < 8 {
        return Err(format(path, format!("{file_len} bytes is too short for the 8-byte header length")));
    }
    file.read_exact(&mut len).map_err(io(path))?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER {
        let hint = "the first 8 bytes are not a safetensors header length";
        return Err(WeightsError::LimitExceeded {
            path: path.into(),
            what: "header length",
            requested: header_len,
            limit: MAX_HEADER,
            hint,
        });
    }
    if header_len > file_len - 8 {
        return Err(format(path, format!("header of {header_len} bytes runs past the end of the {file_len}-byte file")));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(io(path))?;
    let data_start = 8 + header_len;
    for t in locate(path, &header, file_len - data_start)? {
        if into.contains_key(&t.key) {
            return Err(WeightsError::Duplicate {
                path: path.into(),
                key: t.key,
                first: "an earlier shard".into(),
                second: "this file".into(),
            });
        }
        let mut data = Vec::new();
        if lazy {
            stored.insert(t.key.clone(), Stored { file: path.to_path_buf(), offset: data_start + t.start });
        } else {
            data.resize(t.len as usize, 0);
            file.seek(SeekFrom::Start(data_start + t.start)).and_then(|_| file.read_exact(&mut data)).map_err(io(path))?;
        }
        into.insert(t.key, HostTensor { shape: t.shape, dtype: t.dtype, data });
    }
    Ok(())
}
