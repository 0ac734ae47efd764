//! Checkpoint files: a single `.safetensors`, a sharded `*.safetensors.index.json`,
//! or a PyTorch `.pt/.pth` zip, all read into one map of host tensors by key, or
//! opened lazily: shapes and dtypes known, each tensor's bytes read when asked for
//! (a model streamed through the device a layer at a time never holds all of them).
use crate::error::{io, Result, WeightsError};
use crate::limits::MAX_HEADER;
use crate::tensor::{HostTensor, TensorView};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// All tensors of a checkpoint, by key.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    pub path: PathBuf,
    /// Each tensor's shape, dtype and, unless opened lazily, data.
    pub tensors: BTreeMap<String, HostTensor>,
    /// Where the data of a lazily opened checkpoint's tensors are ([`Checkpoint::read`]).
    pub stored: BTreeMap<String, Stored>,
}

/// A tensor's bytes in a file: [`HostTensor::data`]'s length of them at `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub file: PathBuf,
    pub offset: u64,
}

/// PyTorch checkpoints are zip archives; safetensors files start with a header length.
fn is_zip(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    Ok(f.read(&mut magic).map_err(io(path))? == 4 && magic == *b"PK\x03\x04")
}

fn format(path: &Path, message: String) -> WeightsError {
    WeightsError::Format { path: path.to_path_buf(), message }
}

/// The shards of an index (HF's `weight_map`: key → shard file beside the index).
fn read_index(path: &Path, lazy: bool, stored: &mut BTreeMap<String, Stored>) -> Result<BTreeMap<String, HostTensor>> {
    let len = std::fs::metadata(path).map_err(io(path))?.len();
    if len > MAX_HEADER {
        let hint = "an index lists key names only";
        return Err(WeightsError::LimitExceeded { path: path.into(), what: "index size", requested: len, limit: MAX_HEADER, hint });
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let index: serde_json::Value = serde_json::from_str(&text).map_err(|e| format(path, e.to_string()))?;
    let map = index.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| format(path, "no \"weight_map\" object".into()))?;
    let mut by_shard: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, shard) in map {
        let shard = shard.as_str().ok_or_else(|| format(path, format!("weight_map[{key:?}] is not a file name")))?;
        // Shards sit beside the index; a name with a path in it could read any file.
        if shard.contains(['/', '\\']) || shard == ".." || shard.is_empty() {
            return Err(format(path, format!("shard name {shard:?} of {key} is not a plain file name")));
        }
        by_shard.entry(shard).or_default().push(key);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tensors = BTreeMap::new();
    for (shard, keys) in by_shard {
        let shard_path = dir.join(shard);
        let mut part = BTreeMap::new();
        crate::safetensors_file::read(&shard_path, &mut part, lazy, stored)?;
        for key in keys {
            if !part.contains_key(key) {
                return Err(WeightsError::Missing { path: shard_path.clone(), key: key.to_string() });
            }
        }
        for (key, t) in part {
            if tensors.insert(key.clone(), t).is_some() {
                let first = "another shard".to_string();
                return Err(WeightsError::Duplicate { path: path.into(), key, first, second: shard.to_string() });
            }
        }
    }
    Ok(tensors)
}

impl Checkpoint {
    /// Opens a `.safetensors` file, a `.safetensors.index.json` with its shards, or a
    /// PyTorch zip (`.pt`, `.pth`; nested dicts become dotted keys, see [`Checkpoint::select`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint> {
        Checkpoint::open_with(path.as_ref(), false)
    }

    /// [`Checkpoint::open`] reading only the layout: every tensor's data stays in the
    /// file until [`Checkpoint::read`] asks for it (and [`Checkpoint::check_finite`]
    /// leaves it to that read).
    pub fn open_lazy(path: impl AsRef<Path>) -> Result<Checkpoint> {
        Checkpoint::open_with(path.as_ref(), true)
    }

    fn open_with(path: &Path, lazy: bool) -> Result<Checkpoint> {
        let mut stored = BTreeMap::new();
        let tensors = if path.to_string_lossy().ends_with(".index.json") {
            read_index(path, lazy, &mut stored)?
        } else if is_zip(path)? {
            crate::pth::read(path, lazy, &mut stored)?
        } else {
            let mut tensors = BTreeMap::new();
            crate::safetensors_file::read(path, &mut tensors, lazy, &mut stored)?;
            tensors
        };
        log::debug!("{}: {} tensors{}", path.display(), tensors.len(), if lazy { ", read when used" } else { "" });
        Ok(Checkpoint { path: path.to_path_buf(), tensors, stored })
    }

    /// The tensor `key` with its data: borrowed when held, else read from its file now
    /// and checked for NaN/Inf (the check a lazy open left to this read).
    pub fn read(&self, key: &str) -> Result<Cow<'_, HostTensor>> {
        let t = self.get(key)?;
        if !self.stored.contains_key(key) {
            return Ok(Cow::Borrowed(t));
        }
        let data = self.read_bytes(key, 0, t.numel() * t.dtype.size())?.into_owned();
        let t = HostTensor { shape: t.shape.clone(), dtype: t.dtype, data };
        if let Some((first, count)) = t.view(key).non_finite() {
            let found = vec![crate::NonFinite { key: key.into(), first, count }];
            return Err(WeightsError::NotFinite { path: self.path.clone(), found });
        }
        Ok(Cow::Owned(t))
    }

    /// `len` bytes of tensor `key`'s data from byte `start` (e.g. one row of an
    /// embedding table), from memory or from its file; not checked for NaN/Inf.
    pub fn read_bytes(&self, key: &str, start: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        let t = self.get(key)?;
        let size = (t.numel() * t.dtype.size()) as u64;
        if start.checked_add(len as u64).is_none_or(|end| end > size) {
            return Err(WeightsError::OutOfBounds {
                path: self.path.clone(),
                key: key.into(),
                start,
                end: start.saturating_add(len as u64),
                limit: size,
            });
        }
        let Some(at) = self.stored.get(key) else { return Ok(Cow::Borrowed(&t.data[start as usize..start as usize + len])) };
        let mut data = vec![0u8; len];
        let mut f = std::fs::File::open(&at.file).map_err(io(&at.file))?;
        f.seek(SeekFrom::Start(at.offset + start)).and_then(|_| f.read_exact(&mut data)).map_err(io(&at.file))?;
        Ok(Cow::Owned(data))
    }

    /// The sub-dict under `prefix` (dotted: `generator_ema` or `generator_ema.model`)
    /// with the prefix removed; everything else is dropped, e.g. the training
    /// generator next to the EMA one in a Self-Forcing `.pt`.
    pub fn select(self, prefix: &str) -> Result<Checkpoint> {
        self.strip_prefix(&format!("{prefix}."))
    }

    /// Keeps the keys that start with `prefix` (a plain string, e.g. `model.`) and
    /// removes it from them. No key carrying it is an error naming what was there.
    pub fn strip_prefix(self, prefix: &str) -> Result<Checkpoint> {
        let Checkpoint { path, tensors, stored } = self;
        let roots: Vec<String> = tensors.keys().map(|k| k.split('.').next().unwrap_or_default().to_string()).collect();
        let strip = |k: &String| Some(k.strip_prefix(prefix)?.to_string());
        let kept: BTreeMap<String, HostTensor> = tensors.into_iter().filter_map(|(k, t)| Some((strip(&k)?, t))).collect();
        let stored = stored.into_iter().filter_map(|(k, s)| Some((strip(&k)?, s))).collect();
        if kept.is_empty() {
            let mut roots = roots;
            roots.dedup();
            let key = format!("{prefix}* (the file has {})", roots.join(", "));
            return Err(WeightsError::Missing { path, key });
        }
        Ok(Checkpoint { path, tensors: kept, stored })
    }

    pub fn get(&self, key: &str) -> Result<&HostTensor> {
        self.tensors.get(key).ok_or_else(|| WeightsError::Missing { path: self.path.clone(), key: key.to_string() })
    }

    pub fn view<'a>(&'a self, key: &'a str) -> Result<TensorView<'a>> {
        Ok(self.get(key)?.view(key))
    }

    pub fn views(&self) -> impl Iterator<Item = TensorView<'_>> {
        self.tensors.iter().map(|(k, t)| t.view(k))
    }

    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }
}
