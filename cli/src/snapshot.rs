//! Session snapshots on disk: one safetensors file holding the device state tensors
//! and the re-cacheable chunks' latents, with the window position in its metadata.
use anyhow::{anyhow, bail, Context, Result};
use graph::models::dit::session::{Committed, Snapshot};
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "videossm-snapshot-1";

pub fn save(path: &Path, s: &Snapshot) -> Result<()> {
    let mut meta = HashMap::new();
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
    let views = data
        .iter()
        .map(|(k, shape, b)| Ok((k.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)?)))
        .collect::<Result<Vec<_>>>()?;
    // Write beside the target and rename, so an interrupted save never leaves half a snapshot.
    let tmp = path.with_extension("partial");
    safetensors::tensor::serialize_to_file(views, Some(meta), &tmp).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn load(path: &Path) -> Result<Snapshot> {
    let bytes = std::fs::read(path).with_context(|| format!("reading snapshot {}", path.display()))?;
    let bad = |m: String| anyhow!("{}: not a videossm snapshot: {m}", path.display());
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let meta = header.metadata().clone().ok_or_else(|| bad("no metadata".into()))?;
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        bail!(bad(format!("format {:?}, expected {FORMAT}", meta.get("format"))));
    }
    let field = |k: &str| meta.get(k).ok_or_else(|| bad(format!("metadata {k} missing")));
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let read = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let t = st.tensor(name).map_err(|e| bad(format!("{name}: {e}")))?;
        if t.dtype() != safetensors::Dtype::F32 {
            bail!(bad(format!("{name} is {:?}, f32 expected", t.dtype())));
        }
        Ok((t.shape().to_vec(), t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
    };
    let mut history = Vec::new();
    for (i, item) in field("history")?.split(',').filter(|s| !s.is_empty()).enumerate() {
        let (t, f) = item.split_once(':').ok_or_else(|| bad(format!("history entry {item:?}")))?;
        let parse = |v: &str| v.parse::<u64>().map_err(|e| bad(format!("history entry {item:?}: {e}")));
        history.push(Committed { token0: parse(t)?, frame0: parse(f)? as usize, latents: read(&format!("history.{i}"))?.1 });
    }
    let mut names: Vec<String> = st.names().into_iter().filter(|n| n.starts_with("state.")).map(str::to_string).collect();
    // Restore in the session's order: tensors were written blocks first, in a fixed order.
    names.sort_by_key(|n| s_order(n));
    let tensors =
        names.iter().map(|n| read(n).map(|(shape, v)| (n["state.".len()..].to_string(), shape, v))).collect::<Result<Vec<_>>>()?;
    let num = |k: &str| field(k).and_then(|v| v.parse::<f64>().map_err(|e| bad(format!("{k}: {e}"))));
    Ok(Snapshot {
        tokens_written: num("tokens_written")? as u64,
        frame0: num("frame0")? as usize,
        context_t: num("context_t")? as f32,
        history,
        tensors,
    })
}

/// Sort key giving the session's state order: block number, then the fixed field order.
fn s_order(name: &str) -> (usize, usize) {
    let rest = name.trim_start_matches("state.blocks.");
    let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
    const FIELDS: [&str; 8] = ["cache_k", "cache_v", "ctx_k", "ctx_v", "memory.khat", "memory.beta", "memory.decay", "memory.state"];
    (n.parse().unwrap_or(usize::MAX), FIELDS.iter().position(|f| *f == field).unwrap_or(FIELDS.len()))
}
