//! Session snapshots on disk: one safetensors file holding the device state tensors
//! and the re-cacheable chunks' latents, with the window position (and, for a whole
//! generation session, the RNG, seed, chunk count, prompt and the VAE decoder's causal
//! caches) in its metadata. Host-side only, so a hostile snapshot is parsed and
//! checked without a GPU.
//!
//! Format 2 added the decoder caches (`decoder.<conv>.cache` tensors, metadata
//! `decoder = caches`); format 3 the frames of the last chunk not yet delivered
//! (`held_frames`, u8 `[n, height, width, 3]`). Formats 1 and 2 still load, without them.
use crate::error::{io, Result, WeightsError};
use std::collections::HashMap;
use std::path::Path;

/// A named device tensor with its shape and values.
pub type StateTensor = (String, Vec<usize>, Vec<f32>);

/// A committed chunk kept for re-caching under a new prompt while its tokens are cached.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    /// Index of its first token among all tokens ever written.
    pub token0: u64,
    pub frame0: usize,
    pub latents: Vec<f32>,
}

/// Everything a DiT session needs to continue a video: constant size for a windowed
/// cache (the device state, the window position, the re-cacheable chunks).
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub tokens_written: u64,
    pub frame0: usize,
    pub context_t: f32,
    pub history: Vec<Committed>,
    /// Device state tensors by name, with shapes.
    pub tensors: Vec<StateTensor>,
}

/// A generation session between two chunks, restorable into a session of the same model and shape.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionState {
    pub generator: Snapshot,
    /// Noise generator state: the next chunk draws the same noise as it would have.
    pub rng: u64,
    pub seed: u64,
    /// Chunks generated so far.
    pub chunk: usize,
    pub prompt: String,
    /// Cache size in latent frames.
    pub capacity: usize,
    /// `F,C,h,w` of a chunk: a snapshot of another shape is refused.
    pub shape: [usize; 4],
    /// The VAE decoder's causal caches by name, sorted, so the frames after a resume
    /// are the same pixels. `None` in a state saved without them (format 1, or after a
    /// lost device, whose caches could no longer be read): the latents are still exact.
    pub decoder: Option<Vec<StateTensor>>,
    /// Decoded frames of the last chunk that were not delivered (the run asked for fewer
    /// frames than the chunk made): a resume delivers them first, so a saved and resumed
    /// video equals the straight one frame for frame.
    pub held: HeldFrames,
}

/// RGB8 frames, rows top to bottom, 3 bytes per pixel, one after the other.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeldFrames {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl HeldFrames {
    pub fn count(&self) -> usize {
        self.rgb.len().checked_div(self.width * self.height * 3).unwrap_or(0)
    }
}

impl Snapshot {
    /// Whether the state tensors are exactly `expected` (name, shape), in order.
    pub fn check_tensors<'a>(&self, expected: impl ExactSizeIterator<Item = (&'a str, &'a [usize])>) -> std::result::Result<(), String> {
        check_tensors("tensor", &self.tensors, expected)
    }
}

/// Whether `got` are exactly `expected` (name, shape), in order; the error names the
/// first tensor that differs (`what` says which kind) with both shapes.
pub fn check_tensors<'a>(
    what: &str,
    got: &[StateTensor],
    expected: impl ExactSizeIterator<Item = (&'a str, &'a [usize])>,
) -> std::result::Result<(), String> {
    let n = expected.len();
    for (i, (name, shape)) in expected.enumerate() {
        let Some((sname, sshape, data)) = got.get(i) else {
            return Err(format!("snapshot has no {what} {name} {shape:?} (it holds {} of this model's {n}): another model", got.len()));
        };
        if name != sname || shape != sshape.as_slice() || sshape.iter().try_fold(1usize, |a, &n| a.checked_mul(n)) != Some(data.len()) {
            return Err(format!("snapshot {what} {sname} {sshape:?} does not fit {name} {shape:?}: another model or size"));
        }
    }
    match got.get(n) {
        Some((sname, sshape, _)) => Err(format!("snapshot {what} {sname} {sshape:?} is not in this model (it has {n}): another model")),
        None => Ok(()),
    }
}

impl SessionState {
    /// The position fields agree with each other and with the chunk count, for chunks of
    /// `frames` latent frames of `tokens_per_frame` tokens, so a tampered file cannot
    /// steer the window bookkeeping out of range.
    pub fn check_position(&self, frames: usize, tokens_per_frame: usize) -> std::result::Result<(), String> {
        let g = &self.generator;
        let tokens = frames as u64 * tokens_per_frame as u64;
        let chunk = self.chunk as u64;
        if chunk.checked_mul(tokens) != Some(g.tokens_written) || self.chunk.checked_mul(frames) != Some(g.frame0) {
            return Err(format!(
                "position {} tokens / frame {} is not chunk {} of {tokens} tokens and {frames} frames",
                g.tokens_written, g.frame0, self.chunk
            ));
        }
        // The cache size must be the one the file's tensors have (no allocation from a bare number).
        let rows = g.tensors.iter().find(|t| t.0 == "blocks.0.cache_k").map(|t| t.1.first().copied());
        if rows != Some(self.capacity.checked_mul(tokens_per_frame)) {
            return Err(format!("a window of {} frames does not match its cache tensors", self.capacity));
        }
        if !g.context_t.is_finite() {
            return Err(format!("context timestep {} is not a number", g.context_t));
        }
        let len = self.shape.iter().try_fold(1usize, |a, &n| a.checked_mul(n));
        for h in &g.history {
            let c = h.token0.checked_div(tokens).unwrap_or(u64::MAX);
            if tokens == 0 || h.token0 % tokens != 0 || c >= chunk || h.frame0 as u64 != c * frames as u64 || Some(h.latents.len()) != len {
                return Err(format!("history entry at token {} / frame {} is not one of the chunks before {chunk}", h.token0, h.frame0));
            }
        }
        Ok(())
    }
}

const FORMAT: &str = "videossm-snapshot-3";
/// Formats this version reads: 1 has no decoder caches, 1 and 2 no held frames.
const READS: [&str; 3] = ["videossm-snapshot-1", "videossm-snapshot-2", FORMAT];
/// The tensor of [`SessionState::held`].
const HELD: &str = "held_frames";
/// Metadata keys of a generation session on top of the generator's.
const SESSION_KEYS: [&str; 6] = ["rng", "seed", "chunk", "prompt", "capacity", "shape"];
/// Metadata `decoder` of a session whose `decoder.*` tensors are the VAE caches.
const DECODER: (&str, &str) = ("decoder", "caches");

/// Writes a generator snapshot.
pub fn save(path: &Path, s: &Snapshot) -> Result<()> {
    save_with(path, s, HashMap::new(), &[], &HeldFrames::default())
}

/// Writes a generation session: the generator snapshot, the session fields and the decoder caches.
pub fn save_session(path: &Path, s: &SessionState) -> Result<()> {
    let shape: Vec<String> = s.shape.iter().map(usize::to_string).collect();
    let values = [s.rng.to_string(), s.seed.to_string(), s.chunk.to_string(), s.prompt.clone(), s.capacity.to_string(), shape.join(",")];
    let mut meta: HashMap<String, String> = SESSION_KEYS.iter().map(|k| k.to_string()).zip(values).collect();
    if s.decoder.is_some() {
        meta.insert(DECODER.0.into(), DECODER.1.into());
    }
    save_with(path, &s.generator, meta, s.decoder.as_deref().unwrap_or_default(), &s.held)
}

fn save_with(path: &Path, s: &Snapshot, mut meta: HashMap<String, String>, decoder: &[StateTensor], held: &HeldFrames) -> Result<()> {
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
    let frames = (!held.rgb.is_empty()).then(|| (HELD.to_string(), vec![held.count(), held.height, held.width, 3], held.rgb.clone()));
    data.extend(
        decoder.iter().map(|(k, shape, v)| (format!("decoder.{k}"), shape.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect())),
    );
    for (i, h) in s.history.iter().enumerate() {
        data.push((format!("history.{i}"), vec![h.latents.len()], h.latents.iter().flat_map(|x| x.to_le_bytes()).collect()));
    }
    let bad = |m: String| WeightsError::Snapshot { path: path.into(), message: m };
    let views = data
        .iter()
        .map(|(k, shape, b)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b).map_err(|e| bad(e.to_string()))?;
            Ok((k.clone(), view))
        })
        .chain(frames.iter().map(|(k, shape, b)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::U8, shape.clone(), b).map_err(|e| bad(e.to_string()))?;
            Ok((k.clone(), view))
        }))
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
    let (generator, meta, decoder, held) = load_with(path)?;
    let bad = |m: String| WeightsError::Snapshot { path: path.into(), message: m };
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
        decoder: match meta.get(DECODER.0) {
            Some(v) if v == DECODER.1 => Some(decoder),
            None if decoder.is_empty() => None,
            v => return Err(bad(format!("decoder {v:?} with {} decoder tensors: expected {:?} or none", decoder.len(), DECODER.1))),
        },
        held,
    })
}

/// What a snapshot file holds: the generator snapshot, the metadata, the `decoder.*`
/// tensors (sorted by name) and the held frames.
type Loaded = (Snapshot, HashMap<String, String>, Vec<StateTensor>, HeldFrames);

fn load_with(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let bad = |m: String| WeightsError::Snapshot { path: path.into(), message: m };
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let meta = header.metadata().clone().ok_or_else(|| bad("no metadata".into()))?;
    if !meta.get("format").is_some_and(|f| READS.contains(&f.as_str())) {
        return Err(bad(format!("format {:?}, expected one of {READS:?}", meta.get("format"))));
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
    let names = |prefix: &str| -> Vec<String> { st.names().into_iter().filter(|n| n.starts_with(prefix)).map(str::to_string).collect() };
    let read_all = |names: Vec<String>, prefix: &str| -> Result<Vec<StateTensor>> {
        names.iter().map(|n| read(n).map(|(shape, v)| (n[prefix.len()..].to_string(), shape, v))).collect()
    };
    // Restore in the session's order: tensors were written blocks first, in a fixed order.
    let mut state = names("state.");
    state.sort_by_key(|n| s_order(n));
    let tensors = read_all(state, "state.")?;
    // The decoder's caches in name order (its BTreeMap's).
    let mut caches = names("decoder.");
    caches.sort();
    let decoder = read_all(caches, "decoder.")?;
    let int = |k: &str| field(k).and_then(|v| v.parse::<u64>().map_err(|e| bad(format!("{k} {v:?}: {e}"))));
    let context_t = field("context_t")?.parse::<f32>().map_err(|e| bad(format!("context_t: {e}")))?;
    let frame0 = usize::try_from(int("frame0")?).map_err(|e| bad(format!("frame0: {e}")))?;
    let held = match st.tensor(HELD) {
        Err(_) => HeldFrames::default(),
        Ok(t) => match (t.dtype(), t.shape()) {
            (safetensors::Dtype::U8, &[n, height, width, 3]) if n > 0 && height > 0 && width > 0 => {
                HeldFrames { width, height, rgb: t.data().to_vec() }
            }
            (dtype, shape) => return Err(bad(format!("{HELD} is {dtype:?} {shape:?}: expected u8 [frames, height, width, 3]"))),
        },
    };
    Ok((Snapshot { tokens_written: int("tokens_written")?, frame0, context_t, history, tensors }, meta, decoder, held))
}

/// Sort key giving the session's state order: block number, then the fixed field order.
fn s_order(name: &str) -> (usize, usize) {
    let rest = name.trim_start_matches("state.blocks.");
    let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
    // S is `memory.state` in B.3 sessions and `memory.delta_state` in B.6 ones.
    const FIELDS: [&str; 8] = ["cache_k", "cache_v", "ctx_k", "ctx_v", "memory.beta", "memory.decay", "memory.state", "memory.delta_state"];
    (n.parse().unwrap_or(usize::MAX), FIELDS.iter().position(|f| *f == field).unwrap_or(FIELDS.len()))
}
