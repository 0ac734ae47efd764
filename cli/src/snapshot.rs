//! Session snapshots on disk: one safetensors file holding the device state tensors
//! and the re-cacheable chunks' latents, with the window position (and, for a whole
//! generation session, the RNG, seed, chunk count and prompt) in its metadata.
use crate::error::{io, Error, Result};
use crate::generate::SessionState;
use graph::models::dit::session::{Committed, Snapshot};
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "videossm-snapshot-1";
/// Metadata keys of a generation session on top of the generator's.
const SESSION_KEYS: [&str; 6] = ["rng", "seed", "chunk", "prompt", "capacity", "shape"];

/// Writes a generator snapshot.
pub fn save(path: &Path, s: &Snapshot) -> Result<()> {
    save_with(path, s, HashMap::new())
}

/// Writes a generation session: the generator snapshot and the session fields.
pub fn save_session(path: &Path, s: &SessionState) -> Result<()> {
    let shape: Vec<String> = s.shape.iter().map(usize::to_string).collect();
    let values = [s.rng.to_string(), s.seed.to_string(), s.chunk.to_string(), s.prompt.clone(), s.capacity.to_string(), shape.join(",")];
    save_with(path, &s.generator, SESSION_KEYS.iter().map(|k| k.to_string()).zip(values).collect())
}

fn save_with(path: &Path, s: &Snapshot, mut meta: HashMap<String, String>) -> Result<()> {
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("tokens_written".to_string(), s.tokens_written.to_string());
    meta.insert("frame0".to_string(), s.frame0.to_string());
    meta.insert("context_t".to_string(), s.context_t.to_string());
    let history: Vec<String> = s.history.iter().map(|h| format!("{}:{}", h.token0, h.frame0)).collect();
    meta.insert("history".to_string(), history.join(","));
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = s
        .tensors
        .iter()
        .map(|(k, shape, v)| (format!("state.{k}"), shape.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    for (i, h) in s.history.iter().enumerate() {
        data.push((format!("history.{i}"), vec![h.latents.len()], h.latents.iter().flat_map(|x| x.to_le_bytes()).collect()));
    }
    let bad = |m: String| Error::Snapshot { path: path.into(), message: m };
    let views = data
        .iter()
        .map(|(k, shape, b)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b).map_err(|e| bad(e.to_string()))?;
            Ok((k.clone(), view))
        })
        .collect::<Result<Vec<_>>>()?;
    // Write beside the target and rename, so an interrupted save never leaves half a snapshot.
    let tmp = path.with_extension("partial");
    let bytes = safetensors::tensor::serialize(views, Some(meta)).map_err(|e| bad(e.to_string()))?;
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

/// Reads a generator snapshot.
pub fn load(path: &Path) -> Result<Snapshot> {
    Ok(load_with(path)?.0)
}

/// Reads a generation session written by [`save_session`].
pub fn load_session(path: &Path) -> Result<SessionState> {
    let (generator, meta) = load_with(path)?;
    let bad = |m: String| Error::Snapshot { path: path.into(), message: m };
    let field = |k: &str| meta.get(k).ok_or_else(|| bad(format!("metadata {k} missing: a generator snapshot, not a generation session")));
    let num = |k: &str| field(k).and_then(|v| v.parse::<u64>().map_err(|e| bad(format!("{k} {v:?}: {e}"))));
    let dims: Vec<usize> =
        field("shape")?.split(',').map(|v| v.parse().map_err(|e| bad(format!("shape {v:?}: {e}")))).collect::<Result<_>>()?;
    let shape: [usize; 4] = dims.try_into().map_err(|d| bad(format!("shape {d:?} has not 4 entries")))?;
    let small = |k: &str| num(k).and_then(|v| usize::try_from(v).map_err(|e| bad(format!("{k}: {e}"))));
    Ok(SessionState {
        generator,
        rng: num("rng")?,
        seed: num("seed")?,
        chunk: small("chunk")?,
        prompt: field("prompt")?.clone(),
        capacity: small("capacity")?,
        shape,
    })
}

fn load_with(path: &Path) -> Result<(Snapshot, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let bad = |m: String| Error::Snapshot { path: path.into(), message: m };
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let meta = header.metadata().clone().ok_or_else(|| bad("no metadata".into()))?;
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(format!("format {:?}, expected {FORMAT}", meta.get("format"))));
    }
    let field = |k: &str| meta.get(k).ok_or_else(|| bad(format!("metadata {k} missing")));
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let read = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let t = st.tensor(name).map_err(|e| bad(format!("{name}: {e}")))?;
        if t.dtype() != safetensors::Dtype::F32 {
            return Err(bad(format!("{name} is {:?}, f32 expected", t.dtype())));
        }
        Ok((t.shape().to_vec(), t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
    };
    let mut history = Vec::new();
    for (i, item) in field("history")?.split(',').filter(|s| !s.is_empty()).enumerate() {
        let (t, f) = item.split_once(':').ok_or_else(|| bad(format!("history entry {item:?}")))?;
        let parse = |v: &str| v.parse::<u64>().map_err(|e| bad(format!("history entry {item:?}: {e}")));
        let frame0 = usize::try_from(parse(f)?).map_err(|e| bad(format!("history entry {item:?}: {e}")))?;
        history.push(Committed { token0: parse(t)?, frame0, latents: read(&format!("history.{i}"))?.1 });
    }
    let mut names: Vec<String> = st.names().into_iter().filter(|n| n.starts_with("state.")).map(str::to_string).collect();
    // Restore in the session's order: tensors were written blocks first, in a fixed order.
    names.sort_by_key(|n| s_order(n));
    let tensors =
        names.iter().map(|n| read(n).map(|(shape, v)| (n["state.".len()..].to_string(), shape, v))).collect::<Result<Vec<_>>>()?;
    let int = |k: &str| field(k).and_then(|v| v.parse::<u64>().map_err(|e| bad(format!("{k} {v:?}: {e}"))));
    let context_t = field("context_t")?.parse::<f32>().map_err(|e| bad(format!("context_t: {e}")))?;
    let frame0 = usize::try_from(int("frame0")?).map_err(|e| bad(format!("frame0: {e}")))?;
    Ok((Snapshot { tokens_written: int("tokens_written")?, frame0, context_t, history, tensors }, meta))
}

/// Sort key giving the session's state order: block number, then the fixed field order.
fn s_order(name: &str) -> (usize, usize) {
    let rest = name.trim_start_matches("state.blocks.");
    let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
    const FIELDS: [&str; 8] = ["cache_k", "cache_v", "ctx_k", "ctx_v", "memory.khat", "memory.beta", "memory.decay", "memory.state"];
    (n.parse().unwrap_or(usize::MAX), FIELDS.iter().position(|f| *f == field).unwrap_or(FIELDS.len()))
}
