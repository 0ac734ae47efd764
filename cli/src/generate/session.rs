//! One video being generated: the DiT session (window, sinks, SSM state), the
//! seeded noise, the decoder, the prompt and the chunk position. Everything needed
//! to continue is in [`SessionState`], constant in size for a bounded window.
use super::needs::Needs;
use super::pipeline::Pipeline;
use super::stages::DecodeStage;
use super::{chunk_video_frames, Frame};
use crate::error::{invalid, Result};
use crate::synthetic::Rng;
use graph::models::dit::sampler::denoise_chunk;
use graph::models::dit::session::Generator;
use graph::models::dit::DitDims;
use graph::CompileOptions;
use weights::snapshot::HeldFrames;
pub use weights::snapshot::SessionState;

/// One generated chunk: its clean latents `[F, C, h, w]` and its decoded frames (after
/// the frames a restored session still held from the chunk before, if any).
#[derive(Clone, Debug)]
pub struct Chunk {
    pub index: usize,
    pub latents: Vec<f32>,
    pub frames: Vec<Frame>,
    pub width: usize,
    pub height: usize,
    /// The prompt the chunk was generated under.
    pub prompt: String,
    pub timing: ChunkTiming,
}

/// Where a chunk's time went, and what the device held after it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChunkTiming {
    /// The denoising steps and the context pass together, and how many DiT calls they are.
    pub dit_seconds: f64,
    pub dit_calls: usize,
    pub vae_seconds: f64,
    /// The device allocator's figure after the chunk, where it reports.
    pub allocated: Option<u64>,
}

pub struct Session<'p> {
    pipeline: &'p Pipeline,
    generator: Generator,
    decoder: DecodeStage,
    rng: Rng,
    seed: u64,
    chunk: usize,
    prompt: String,
    capacity: usize,
    timesteps: Vec<f32>,
    sigmas: Vec<f32>,
    /// Decoded frames not delivered yet, owed before the next chunk's (see [`Session::hold`]).
    held: Vec<Frame>,
}

/// The cache size for a video of `chunks` chunks (known up front only with an unbounded window).
fn capacity(p: &Pipeline, chunks: Option<usize>) -> Result<usize> {
    match (p.config.local_attn_size, chunks) {
        (w, _) if w > 0 => Ok(w as usize),
        (_, Some(c)) => Ok(c.max(1) * p.chunk_frames() + p.config.sink_size),
        (_, None) => Err(invalid("window", "unbounded (-1) needs the video length: set a window or use Session::with_chunks")),
    }
}

impl<'p> Session<'p> {
    /// A new video of `prompt` whose noise is drawn from `seed`.
    pub fn new(pipeline: &'p Pipeline, prompt: &str, seed: u64) -> Result<Session<'p>> {
        Session::with_chunks(pipeline, prompt, seed, None)
    }

    /// As [`Session::new`], sizing an unbounded cache for `chunks` chunks.
    pub fn with_chunks(pipeline: &'p Pipeline, prompt: &str, seed: u64, chunks: Option<usize>) -> Result<Session<'p>> {
        let capacity = capacity(pipeline, chunks)?;
        let mut s = Session::open(pipeline, capacity, seed)?;
        s.generator.set_context(&pipeline.encode_prompt(prompt)?)?;
        s.prompt = prompt.to_string();
        if let Some(budget) = pipeline.max_memory {
            if let Some(why) = s.needs()?.over_budget(budget) {
                return Err(invalid("--max-memory", why));
            }
        }
        Ok(s)
    }

    fn open(p: &'p Pipeline, capacity: usize, seed: u64) -> Result<Session<'p>> {
        let g = &p.generation;
        let (h, w) = (g.latent_height.unwrap_or(0), g.latent_width.unwrap_or(0));
        let dims = DitDims::new(&p.config, g.num_frame_per_block, h, w);
        // The DiT first: the decoder's row bands are then chosen to fit the shared
        // activation buffers its graphs planned, and reuse them.
        let generator = Generator::new(p.gpu.clone(), &p.weights, dims, capacity, p.config.sink_size, CompileOptions::default())?;
        let decoder = p.decoder(&generator)?;
        let (timesteps, sigmas) = g.schedule().into_iter().unzip();
        Ok(Session {
            pipeline: p,
            generator,
            decoder,
            rng: Rng::new(seed),
            seed,
            chunk: 0,
            prompt: String::new(),
            capacity,
            timesteps,
            sigmas,
            held: Vec::new(),
        })
    }

    /// Continues the video `state` was taken from.
    pub fn restore(pipeline: &'p Pipeline, state: &SessionState) -> Result<Session<'p>> {
        let mine = capacity(pipeline, Some(state.chunk))?;
        if pipeline.config.local_attn_size > 0 && mine != state.capacity {
            return Err(invalid(
                "window",
                format!("the snapshot has a {} frame window, this run {mine}: use --window {}", state.capacity, state.capacity),
            ));
        }
        let mut s = Session::open(pipeline, state.capacity, state.seed)?;
        if s.shape() != state.shape {
            return Err(invalid(
                "snapshot",
                format!(
                    "chunks of {:?} (frames, channels, h, w) do not match this model's {:?}: another model or size",
                    state.shape,
                    s.shape()
                ),
            ));
        }
        let d = &s.generator.dims;
        state.check_position(d.frames, d.tokens_per_frame()).map_err(|m| invalid("snapshot", m))?;
        s.generator.restore(&state.generator)?;
        s.rng = Rng::from_state(state.rng);
        s.chunk = state.chunk;
        s.prompt = state.prompt.clone();
        if state.chunk > 0 {
            s.decoder.resume(state.decoder.as_deref(), state.generator.history.last().map_or(&[][..], |h| &h.latents))?;
        }
        s.held = held_frames(&state.held, pipeline.frame_size(), s.chunk_frames_max())?;
        Ok(s)
    }

    /// The most video frames one chunk decodes to (the first chunk makes fewer).
    fn chunk_frames_max(&self) -> usize {
        chunk_video_frames(1, self.generator.dims.frames)
    }

    fn shape(&self) -> [usize; 4] {
        let d = &self.generator.dims;
        [d.frames, d.channels, d.height, d.width]
    }

    /// Switches the prompt from the next chunk on, refreshing the cross-attention
    /// cache and the window's keys/values without restarting the video.
    pub fn set_prompt(&mut self, prompt: &str) -> Result<()> {
        if prompt == self.prompt {
            return Ok(());
        }
        let context = self.pipeline.encode_prompt(prompt)?;
        self.generator.switch_prompt(&context)?;
        self.prompt = prompt.to_string();
        Ok(())
    }

    /// Generates and decodes the next chunk.
    pub fn next_frames(&mut self) -> Result<Chunk> {
        let len: usize = self.shape().iter().product();
        let rng = &mut self.rng;
        let noise = rng.normals(len, 1.0);
        let context_t = self.pipeline.generation.context_noise as f32;
        let t0 = std::time::Instant::now();
        let latents =
            denoise_chunk(&mut self.generator, &self.timesteps, &self.sigmas, context_t, noise, |_| rng.normals(len, 1.0), |_, _, _| {})?;
        let t1 = std::time::Instant::now();
        let mut frames = std::mem::take(&mut self.held);
        frames.extend(self.decoder.decode(&latents)?);
        let timing = ChunkTiming {
            dit_seconds: (t1 - t0).as_secs_f64(),
            dit_calls: self.timesteps.len() + 1,
            vae_seconds: t1.elapsed().as_secs_f64(),
            allocated: self.pipeline.gpu.memory().map(|m| m.allocated),
        };
        let (width, height) = self.pipeline.frame_size();
        let index = self.chunk;
        self.chunk += 1;
        Ok(Chunk { index, latents, frames, width, height, prompt: self.prompt.clone(), timing })
    }

    /// Keeps `frames` (the undelivered tail of the last chunk) to be delivered first: by
    /// [`Session::take_held`] or ahead of the next chunk's frames, and carried by
    /// [`Session::snapshot`], so a video cut at any frame continues at the next one.
    pub fn hold(&mut self, frames: Vec<Frame>) {
        self.held.splice(0..0, frames);
    }

    /// The frames held back (see [`Session::hold`]), handed over.
    pub fn take_held(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.held)
    }

    /// Frames held back, delivered before any new chunk's.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The state between chunks (downloads the device state, the VAE caches included):
    /// a restored session continues the video pixel for pixel.
    pub fn snapshot(&self) -> Result<SessionState> {
        Ok(SessionState { decoder: Some(self.decoder.caches()?), ..self.snapshot_latents()? })
    }

    /// [`Session::snapshot`] without the VAE caches, a cheaper copy to keep every chunk
    /// (at 480×832 the caches are 1.8 GiB in f16, the generator state about 1.3 GB): a restored
    /// session continues the same latents, its first frames may differ slightly in pixels.
    pub fn snapshot_latents(&self) -> Result<SessionState> {
        Ok(SessionState {
            generator: self.generator.snapshot()?,
            rng: self.rng.state(),
            seed: self.seed,
            chunk: self.chunk,
            prompt: self.prompt.clone(),
            capacity: self.capacity,
            shape: self.shape(),
            decoder: None,
            held: HeldFrames {
                width: self.held.first().map_or(0, |f| f.width),
                height: self.held.first().map_or(0, |f| f.height),
                rgb: self.held.iter().flat_map(|f| f.rgb.iter().copied()).collect(),
            },
        })
    }

    /// What this session holds on the device and whether it fits the adapter's limits,
    /// with every graph it runs compiled (so the allocator's figure is the run's).
    pub fn needs(&mut self) -> Result<Needs> {
        let frames = self.pipeline.chunk_frames();
        self.decoder.prepare(frames)?;
        let mut needs = Needs::default();
        let [prompt, pass] = self.generator.graphs();
        needs.add("DiT", &[("prompt", prompt), ("pass", pass)]);
        self.pipeline.text_needs(&mut needs);
        needs.add_vae(&self.decoder.memory(frames)?, &self.decoder.memory(1)?, self.pipeline.dtype);
        needs.check(&self.pipeline.gpu);
        Ok(needs)
    }

    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// Chunks generated so far (the index of the next one).
    pub fn chunk_index(&self) -> usize {
        self.chunk
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// The held frames of a snapshot, checked against this pipeline's frame size and a chunk's length.
fn held_frames(h: &HeldFrames, (width, height): (usize, usize), most: usize) -> Result<Vec<Frame>> {
    if h.rgb.is_empty() {
        return Ok(Vec::new());
    }
    let n = h.count();
    if (h.width, h.height) != (width, height) || n * width * height * 3 != h.rgb.len() || n >= most {
        return Err(invalid(
            "snapshot",
            format!("{n} held frames of {}x{} do not fit this run's {width}x{height} chunks of {most} frames", h.width, h.height),
        ));
    }
    Ok(h.rgb.chunks_exact(width * height * 3).map(|rgb| Frame { width, height, rgb: rgb.to_vec() }).collect())
}
