//! Checkpoint files: a single `.safetensors` or a sharded `*.safetensors.index.json`.
//! Tensors are kept as raw little-endian bytes with their dtype, converted on demand.
use crate::error::{Result, WeightsError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    I64,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I64 => 8,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
        })
    }
}

#[derive(Clone, Debug)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<u8>,
}

impl HostTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn to_f32(&self) -> Vec<f32> {
        let d = &self.data;
        match self.dtype {
            DType::F32 => d.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            DType::F16 => d.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            DType::BF16 => d.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            DType::I64 => d.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).collect(),
        }
    }

    /// Index of the first NaN/Inf and how many there are.
    pub fn non_finite(&self) -> Option<(usize, usize)> {
        if self.dtype == DType::I64 {
            return None;
        }
        let v = self.to_f32();
        let first = v.iter().position(|x| !x.is_finite())?;
        Some((first, v.iter().filter(|x| !x.is_finite()).count()))
    }
}

/// All tensors of a checkpoint, by key.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, HostTensor>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> WeightsError + '_ {
    move |source| WeightsError::Io { path: path.to_path_buf(), source }
}

/// PyTorch checkpoints are zip archives; safetensors files start with a header length.
fn is_zip(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    Ok(f.read(&mut magic).map_err(io(path))? == 4 && magic == [0x50, 0x4b, 0x03, 0x04])
}

fn read_safetensors(path: &Path, into: &mut BTreeMap<String, HostTensor>) -> Result<()> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let fmt = |message: String| WeightsError::Format { path: path.to_path_buf(), message };
    // The safetensors crate validates the header length against the file size and
    // every tensor's byte range against the data section before we touch them.
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| fmt(e.to_string()))?;
    for (name, view) in st.tensors() {
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            safetensors::Dtype::I64 => DType::I64,
            other => return Err(fmt(format!("tensor {name} has unsupported dtype {other:?} (f32, f16, bf16 or i64 expected)"))),
        };
        into.insert(name, HostTensor { shape: view.shape().to_vec(), dtype, data: view.data().to_vec() });
    }
    Ok(())
}

impl Checkpoint {
    /// Opens a `.safetensors` file or a `.safetensors.index.json` with its shards.
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let mut tensors = BTreeMap::new();
        if path.to_string_lossy().ends_with(".index.json") {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            let index: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| WeightsError::Format { path: path.to_path_buf(), message: e.to_string() })?;
            let map = index
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| WeightsError::Format { path: path.to_path_buf(), message: "no \"weight_map\" object".into() })?;
            let mut shards: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
            shards.sort();
            shards.dedup();
            let dir = path.parent().unwrap_or(Path::new("."));
            for shard in shards {
                if shard.contains("..") || Path::new(shard).is_absolute() {
                    return Err(WeightsError::Format {
                        path: path.to_path_buf(),
                        message: format!("shard name {shard:?} leaves the folder"),
                    });
                }
                read_safetensors(&dir.join(shard), &mut tensors)?;
            }
            for key in map.keys() {
                if !tensors.contains_key(key) {
                    return Err(WeightsError::Missing { path: path.to_path_buf(), key: key.clone() });
                }
            }
        } else if is_zip(path)? {
            tensors = crate::pth::read(path).map_err(|message| WeightsError::Format { path: path.to_path_buf(), message })?;
        } else {
            read_safetensors(path, &mut tensors)?;
        }
        Ok(Checkpoint { path: path.to_path_buf(), tensors })
    }

    /// The tensors under `prefix.` with the prefix removed: e.g. `generator_ema.model`
    /// of a Self-Forcing `.pt`, whose state dicts nest under those keys.
    pub fn select(&self, prefix: &str) -> Result<Checkpoint> {
        let p = format!("{prefix}.");
        let tensors: BTreeMap<String, HostTensor> =
            self.tensors.iter().filter_map(|(k, t)| Some((k.strip_prefix(&p)?.to_string(), t.clone()))).collect();
        if tensors.is_empty() {
            return Err(WeightsError::Missing { path: self.path.clone(), key: format!("{prefix}.*") });
        }
        Ok(Checkpoint { path: self.path.clone(), tensors })
    }

    pub fn get(&self, key: &str) -> Result<&HostTensor> {
        self.tensors.get(key).ok_or_else(|| WeightsError::Missing { path: self.path.clone(), key: key.to_string() })
    }

    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// Checks every expected (key, shape) at once and reports all problems together;
    /// keys nobody expected are reported too. Float tensors are scanned for NaN/Inf.
    pub fn validate(&self, expected: &[(String, Vec<usize>)]) -> Result<()> {
        let mut problems = Vec::new();
        for (key, shape) in expected {
            match self.tensors.get(key) {
                None => problems.push(format!("  missing    {key} {shape:?}")),
                Some(t) if &t.shape != shape => problems.push(format!("  shape      {key}: {:?} in the file, {shape:?} expected", t.shape)),
                Some(t) if t.dtype == DType::I64 => problems.push(format!("  dtype      {key}: i64, a float dtype expected")),
                Some(_) => {}
            }
        }
        let known: std::collections::HashSet<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
        problems.extend(self.tensors.keys().filter(|k| !known.contains(k.as_str())).map(|k| format!("  unexpected {k}")));
        if !problems.is_empty() {
            return Err(WeightsError::Mismatch { path: self.path.clone(), problems });
        }
        for (key, _) in expected {
            if let Some((first, bad)) = self.tensors[key].non_finite() {
                return Err(WeightsError::NotFinite { path: self.path.clone(), key: key.clone(), bad, first });
            }
        }
        Ok(())
    }
}
