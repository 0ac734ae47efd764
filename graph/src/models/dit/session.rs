//! A generation session of the DiT: the compiled graphs, the session state
//! (KV window, sinks, cross-attention cache, SSM state) and the chunk position.
use super::graph::{build_pass, build_prompt, PassGraph, MAX_RANGES};
use super::sampler::{time_embedding, ChunkModel, Pass};
use super::weights::DitWeights;
use super::window::{ChunkSlots, Window};
use super::{BlockState, DitDims};
use crate::error::{GraphError, Result};
use crate::executor::{CompileOptions, Compiled};
use runtime::kernels::{copy, rope, ssm_scan};
use runtime::Gpu;
use std::ops::Range;
use std::sync::Arc;

pub use weights::snapshot::{Committed, Snapshot};

pub struct Generator {
    gpu: Arc<Gpu>,
    pub dims: DitDims,
    states: Vec<BlockState>,
    prompt: Compiled,
    pass: PassGraph,
    window: Window,
    /// Absolute index of the current chunk's first latent frame.
    frame0: usize,
    slots: ChunkSlots,
    memory: bool,
    /// B.6's router reads each call's absolute frame index (`ln_rho`).
    router: bool,
    /// The clean latents of the chunk being finished (its context call).
    clean: Vec<f32>,
    context_t: f32,
    history: Vec<Committed>,
}

/// Copies of the rows of a chunk, in order, into the slot runs `runs` (`gather`: out of them).
fn rows_params(runs: &[Range<usize>], d: usize, gather: bool) -> [copy::Params; 2] {
    let mut row = 0;
    let mut out = [copy::Params::rows(0, d, 0, 0); 2];
    for (o, r) in out.iter_mut().zip(runs) {
        *o = if gather { copy::Params::rows(r.len(), d, r.start, row) } else { copy::Params::rows(r.len(), d, row, r.start) };
        row += r.len();
    }
    out
}

impl Generator {
    /// Compiles the graphs for chunks of `dims.frames` latent frames. `capacity_frames`
    /// is the cache size in latent frames (`local_attn_size`, or the whole video when unbounded).
    pub fn new(
        gpu: Arc<Gpu>,
        w: &DitWeights,
        dims: DitDims,
        capacity_frames: usize,
        sink_frames: usize,
        opts: CompileOptions,
    ) -> Result<Generator> {
        let p = dims.tokens_per_frame();
        let window = Window::new(capacity_frames * p, sink_frames * p);
        if capacity_frames < sink_frames + dims.frames {
            return Err(GraphError::Session(format!(
                "a cache of {capacity_frames} latent frames with {sink_frames} sink frames cannot hold a chunk of {} frames: \
                 use a window of at least {} frames",
                dims.frames,
                sink_frames + dims.frames
            )));
        }
        let memory = w.has_memory();
        let kv = crate::models::cache_dtype(&gpu.caps, w.kv_precision(), &opts);
        let states = (0..w.blocks.len())
            .map(|n| BlockState::new(&gpu, n, window.capacity, &dims, memory, kv))
            .collect::<runtime::Result<Vec<_>>>()?;
        let prompt = build_prompt(&gpu, w, &states, &dims, opts)?;
        let pass = build_pass(&gpu, w, &states, &dims, opts)?;
        pass.compiled.write(&gpu, "ranges_text", &[0.0, dims.text_len as f32])?;
        Ok(Generator {
            gpu,
            dims,
            states,
            prompt,
            pass,
            window,
            frame0: 0,
            slots: ChunkSlots::default(),
            memory,
            router: w.has_router(),
            clean: Vec::new(),
            context_t: 0.0,
            history: Vec::new(),
        })
    }

    /// Sets the cross-attention keys/values for text embeddings `[text_len, text_dim]`.
    pub fn set_context(&mut self, context: &[f32]) -> Result<()> {
        let want = self.dims.text_len * self.dims.text_dim;
        if context.len() != want {
            return Err(GraphError::Session(format!("context has {} values, the model takes {want} (text_len × text_dim)", context.len())));
        }
        self.prompt.write(&self.gpu, "context", context)?;
        self.prompt.run(&self.gpu)?;
        Ok(())
    }

    pub fn frame0(&self) -> usize {
        self.frame0
    }

    /// The device state tensors with stable names (`blocks.N.cache_k`, ...,
    /// `blocks.N.memory.state` for B.3, `blocks.N.memory.delta_state` for B.6).
    fn state_tensors(&self) -> Vec<(String, &runtime::Tensor)> {
        let mut v = Vec::new();
        for (n, s) in self.states.iter().enumerate() {
            v.extend(
                [("cache_k", &s.k), ("cache_v", &s.v), ("ctx_k", &s.ctx_k), ("ctx_v", &s.ctx_v)]
                    .map(|(k, t)| (format!("blocks.{n}.{k}"), t)),
            );
            if let Some(m) = &s.memory {
                // The two forms' S mean different things: a B.3 snapshot must not restore into B.6.
                let state = if self.router { "delta_state" } else { "state" };
                v.extend([("beta", &m.beta), ("decay", &m.decay), (state, &m.state)].map(|(k, t)| (format!("blocks.{n}.memory.{k}"), t)));
            }
        }
        v
    }

    /// Reads the whole session state back (between chunks).
    pub fn snapshot(&self) -> Result<Snapshot> {
        let tensors =
            self.state_tensors().into_iter().map(|(k, t)| Ok((k, t.shape.clone(), self.gpu.download(t)?))).collect::<Result<_>>()?;
        Ok(Snapshot {
            tokens_written: self.window.written,
            frame0: self.frame0,
            context_t: self.context_t,
            history: self.history.clone(),
            tensors,
        })
    }

    /// Continues from `snap`, taken from a session of the same model and shape. Snapshots
    /// hold f32 values whatever the caches' dtype, so one made with f16 caches restores
    /// exactly into f32 caches, and one made with f32 caches restores into f16 caches
    /// rounded (and saturated) as the device's cache writes would have stored them.
    pub fn restore(&mut self, snap: &Snapshot) -> Result<()> {
        let mine = self.state_tensors();
        snap.check_tensors(mine.iter().map(|(n, t)| (n.as_str(), t.shape.as_slice()))).map_err(GraphError::Session)?;
        for ((_, t), (_, _, data)) in mine.iter().zip(&snap.tensors) {
            match t.dtype {
                runtime::DType::F16 => self.gpu.write(t, &data.iter().map(|x| x.clamp(-65504.0, 65504.0)).collect::<Vec<_>>())?,
                _ => self.gpu.write(t, data)?,
            }
        }
        self.window.written = snap.tokens_written;
        self.frame0 = snap.frame0;
        self.context_t = snap.context_t;
        self.history = snap.history.clone();
        Ok(())
    }

    pub fn states(&self) -> &[BlockState] {
        &self.states
    }

    /// The compiled prompt and pass graphs (memory reports).
    pub fn graphs(&self) -> [&Compiled; 2] {
        [&self.prompt, &self.pass.compiled]
    }

    /// The most activation bytes one of its graphs plans (the pass's, but for tiny frames).
    pub fn planned_activation_bytes(&self) -> u64 {
        self.graphs().iter().map(|c| c.report().planned_activation_bytes).max().unwrap_or(0)
    }

    pub fn pass_graph(&mut self) -> &mut PassGraph {
        &mut self.pass
    }

    /// Switches the prompt mid-video (MEMORY.md B.4): new cross-attention keys/values,
    /// then every cached chunk is run again as a clean context call under the new
    /// prompt, oldest first, each seeing the keys it saw when it was made, so the
    /// window's keys/values are refreshed. The SSM state is kept as it is.
    /// Chunks partly evicted already keep their old keys/values.
    pub fn switch_prompt(&mut self, context: &[f32]) -> Result<()> {
        self.set_context(context)?;
        let history = std::mem::take(&mut self.history);
        let frame0 = self.frame0;
        let result = history.iter().try_for_each(|h| match self.window.recache(h.token0, self.dims.tokens()) {
            Some(slots) => {
                self.slots = slots;
                self.frame0 = h.frame0;
                self.prepare_call(false)?;
                self.call(&h.latents, self.context_t).map(|_| ())
            }
            None => Ok(()),
        });
        self.frame0 = frame0;
        self.history = history;
        result
    }

    /// Bookkeeping of a chunk's first call: slots, key ranges, RoPE table, scans.
    fn start_chunk(&mut self) -> Result<()> {
        let n = self.dims.tokens();
        self.slots = self.window.plan(n).map_err(|e| GraphError::Session(e.to_string()))?;
        self.prepare_call(true)
    }

    /// Uploads what `self.slots` and `self.frame0` imply for the next calls.
    fn prepare_call(&mut self, first: bool) -> Result<()> {
        let c = &mut self.pass.compiled;
        let mut ranges = vec![0f32; 2 * MAX_RANGES];
        for (i, r) in self.slots.keys.iter().enumerate() {
            ranges[2 * i] = r.start as f32;
            ranges[2 * i + 1] = r.end as f32;
        }
        c.write(&self.gpu, "ranges", &ranges)?;
        let d = &self.dims;
        c.write(&self.gpu, "rope", &rope::table(self.frame0, d.frames, d.rows, d.cols, d.head_dim()))?;
        if self.router {
            c.write(&self.gpu, "ln_rho", &d.ln_rho(self.frame0))?;
        }
        for &(nodes, width) in &self.pass.nodes.writes {
            for (node, p) in nodes.iter().zip(rows_params(&self.slots.write, width, false)) {
                c.set_params(*node, &p)?;
            }
        }
        self.set_scans(first)
    }

    fn call(&mut self, x: &[f32], t: f32) -> Result<Vec<f32>> {
        let c = &mut self.pass.compiled;
        c.write(&self.gpu, "x", x)?;
        c.write(&self.gpu, "time", &time_embedding(t as f64, self.dims.frames, self.dims.freq_dim))?;
        c.run(&self.gpu)?;
        c.read(&self.gpu, "flow")
    }

    /// The evicted slots are folded on a chunk's first call only: their keys gathered
    /// and turned back by the angles of their own frames, then scanned.
    fn set_scans(&mut self, first: bool) -> Result<()> {
        let runs: &[Range<usize>] = if first { &self.slots.evict } else { &[] };
        let d = &self.dims;
        let c = &mut self.pass.compiled;
        if self.memory && !runs.is_empty() {
            // Evictions are whole frames: the first evicted token starts its frame.
            let frame = (self.slots.evict_token0 / d.tokens_per_frame() as u64) as usize;
            c.write(&self.gpu, "unrope", &rope::inverse_table(frame, d.frames, d.rows, d.cols, d.head_dim()))?;
        }
        for nodes in &self.pass.nodes.reads {
            for (node, p) in nodes.iter().zip(rows_params(runs, d.dim, true)) {
                c.set_params(*node, &p)?;
            }
        }
        let p = ssm_scan::Params::scan(d.heads, d.head_dim(), runs);
        for &node in &self.pass.nodes.scans {
            c.set_params(node, &p)?;
        }
        Ok(())
    }
}

impl ChunkModel for Generator {
    type Error = GraphError;

    fn flow(&mut self, x: &[f32], t: f32, pass: Pass) -> Result<Vec<f32>> {
        if pass == Pass::First {
            self.start_chunk()?;
        } else if self.memory {
            self.set_scans(false)?;
        }
        if pass == Pass::Context {
            self.clean = x.to_vec();
            self.context_t = t;
        }
        self.call(x, t)
    }

    fn advance(&mut self) -> Result<()> {
        let n = self.dims.tokens();
        self.history.push(Committed { token0: self.window.written, frame0: self.frame0, latents: std::mem::take(&mut self.clean) });
        self.window.commit(n);
        self.frame0 += self.dims.frames;
        // Keep what can still be re-cached: chunks with a token in the cache.
        let w = &self.window;
        self.history.retain(|h| w.recache(h.token0, n).is_some());
        Ok(())
    }
}
