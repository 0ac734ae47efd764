//! `videossm generate PROMPT`: flags checked up front, then chunks streamed into
//! the output as they are made, with prompt changes from a schedule or stdin,
//! a progress bar, and a clean stop on Ctrl-C (every finished frame kept, state saved).
//! A chunk that fails mid-run (the GPU lost or out of memory) ends the run the same way:
//! the output keeps every finished chunk and the state after the last one is saved.
//!
//! Test hook: `VIDEOSSM_FAULT_AFTER_CHUNKS=N` destroys the device after N chunks of
//! the run, a genuine device loss for the tests of that path.
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;
use videossm::generate::{chunk_of_frame, chunk_video_frames, Pipeline, PipelineOptions, Session, FPS};
use videossm::output::{self, Target};
use videossm::prompts::Schedule;

/// Longest video accepted in one run.
pub const MAX_SECONDS: f64 = 3600.0;

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// What the video shows (optional with --prompts whose first line is at 0s, or with --resume).
    prompt: Option<String>,
    /// Length in seconds (16 frames per second), 1/16..=3600 [default: 5].
    #[arg(long, conflicts_with = "frames")]
    seconds: Option<f64>,
    /// Length in video frames, 1..=57600.
    #[arg(long)]
    frames: Option<usize>,
    /// Output: .mp4, .gif, .y4m, a folder for PNGs, or - for y4m on stdout.
    #[arg(short, long)]
    output: String,
    #[command(flatten)]
    model: ModelArgs,
    /// Seed of the noise: the same seed, prompt and settings give the same video.
    #[arg(long, default_value_t = 0, value_parser = parse_seed, allow_hyphen_values = true)]
    seed: u64,
    /// Time-stamped prompts, one per line: `0s: a cat sits`, `12s: the cat jumps`, `1m30s: ...`.
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Read new prompts from stdin while generating, one per line (applied at the next chunk).
    #[arg(long)]
    interactive: bool,
    /// Write the session state here at the end or on Ctrl-C, to continue with --resume
    /// (a run that fails mid-way saves it here too, or beside the output when not given).
    #[arg(long)]
    save_state: Option<PathBuf>,
    /// Continue the video of a state written by --save-state (the length flags give what to add).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// No progress bar or messages.
    #[arg(short, long)]
    quiet: bool,
}

/// The model and how to run it: shared by `generate` and `serve`.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// Model folder (videossm layout or the official Wan2.1-T2V-1.3B one) [default: the embedded model].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A Self-Forcing / VideoSSM generator checkpoint (.pt or .safetensors) replacing the folder's DiT weights.
    #[arg(long)]
    generator: Option<PathBuf>,
    /// Denoising steps, comma-separated and decreasing, e.g. 1000,750,500,250.
    #[arg(long)]
    steps: Option<String>,
    /// Self-attention window in latent frames, sinks included (-1 = unbounded).
    #[arg(long, allow_negative_numbers = true)]
    window: Option<i64>,
    /// Sink latent frames kept at the start of the window.
    #[arg(long)]
    sink: Option<usize>,
    /// Frame size WIDTHxHEIGHT in pixels, multiples of 16 (default: the model's).
    #[arg(long)]
    size: Option<String>,
    /// Weight dtype on the device: f32, f16 or bf16 [default: the DiT checkpoint's own,
    /// e.g. bf16 for Wan2.1's, f32 for the embedded model].
    #[arg(long)]
    dtype: Option<String>,
    /// Run without the SSM global memory (window only).
    #[arg(long)]
    no_memory: bool,
    /// Device memory budget, e.g. 8G (binary units): a session whose peak would exceed it
    /// is refused before generating, naming its largest part and what would shrink it.
    #[arg(long, value_name = "SIZE")]
    max_memory: Option<String>,
}

fn parse_max_memory(s: &str) -> Result<u64> {
    videossm::generate::parse_size(s).map_err(|e| anyhow::anyhow!("--max-memory {e}"))
}

impl ModelArgs {
    /// The pipeline settings these flags ask for, checked before the GPU is touched.
    pub fn options(&self, gpu: runtime::GpuOptions) -> Result<PipelineOptions> {
        Ok(PipelineOptions {
            gpu,
            dtype: self.dtype.as_deref().map(crate::parse_dtype).transpose()?,
            window: self.window,
            sink: self.sink,
            steps: self.steps.as_deref().map(parse_steps).transpose()?,
            size: self.size.as_deref().map(parse_size).transpose()?,
            generator: self.generator.clone(),
            memory: !self.no_memory,
            max_memory: self.max_memory.as_deref().map(parse_max_memory).transpose()?,
        })
    }

    /// `--model`, or the embedded model unpacked.
    pub fn dir(&self) -> Result<PathBuf> {
        match &self.model {
            Some(dir) => Ok(dir.clone()),
            None => crate::embedded::model_dir(),
        }
    }
}

fn parse_seed(s: &str) -> std::result::Result<u64, String> {
    s.trim().parse().map_err(|_| format!("{s:?}: use a whole number in 0..={}", u64::MAX))
}

fn parse_steps(s: &str) -> Result<Vec<u32>> {
    s.split(',')
        .map(|t| t.trim().parse::<u32>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| anyhow!("--steps {s:?}: use comma-separated timesteps in 1..=1000, decreasing, e.g. 1000,750,500,250"))
}

fn parse_size(s: &str) -> Result<(usize, usize)> {
    let bad = || anyhow!("--size {s:?}: use WIDTHxHEIGHT in pixels, multiples of 16, e.g. 832x480");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((w.trim().parse().map_err(|_| bad())?, h.trim().parse().map_err(|_| bad())?))
}

/// Video frames to write.
fn length(a: &GenerateArgs) -> Result<usize> {
    let max = (MAX_SECONDS * FPS) as usize;
    match (a.frames, a.seconds) {
        (Some(f), _) if (1..=max).contains(&f) => Ok(f),
        (Some(f), _) => bail!("--frames {f}: use 1..={max} ({MAX_SECONDS} s at {FPS} fps)"),
        (None, Some(s)) if s.is_finite() && s * FPS >= 1.0 && s <= MAX_SECONDS => Ok((s * FPS).round() as usize),
        (None, Some(s)) => bail!("--seconds {s}: use {}..={MAX_SECONDS}", 1.0 / FPS),
        (None, None) => Ok(5 * FPS as usize),
    }
}

/// Everything checked before the GPU is touched.
struct Plan {
    target: Target,
    /// The output file did not exist before this run.
    created: bool,
    frames: usize,
    schedule: Option<Schedule>,
    options: PipelineOptions,
    resume: Option<videossm::SessionState>,
}

fn plan(a: &GenerateArgs, gpu: runtime::GpuOptions) -> Result<Plan> {
    let target = Target::parse(&a.output)?;
    if a.interactive && a.prompts.is_some() {
        bail!("--interactive and --prompts: use one way of changing prompts");
    }
    let frames = length(a)?;
    if a.prompt.as_deref().is_some_and(|p| p.trim().is_empty()) {
        bail!("prompt: is empty: describe the video, e.g. \"a red ball bouncing\"");
    }
    let schedule = a.prompts.as_deref().map(Schedule::load).transpose()?;
    let resume = a.resume.as_deref().map(videossm::snapshot::load_session).transpose()?;
    if let (Some(s), None, None) = (&schedule, &a.prompt, &resume) {
        let first = &s.cues[0];
        if first.seconds > 0.0 {
            bail!(
                "{}:{}: the first prompt starts at {}s; start it at 0s or give PROMPT for the time before",
                a.prompts.as_ref().unwrap().display(),
                first.line,
                first.seconds
            );
        }
    }
    if a.prompt.is_none() && schedule.is_none() && resume.is_none() {
        bail!("no prompt: give PROMPT, --prompts FILE or --resume FILE");
    }
    if let Some(p) = &a.save_state {
        // Fail now rather than after a long run.
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            bail!("--save-state {}: folder {} does not exist", p.display(), dir.display());
        }
    }
    let options = a.model.options(gpu)?;
    let created = target.check()?;
    Ok(Plan { target, created, frames, schedule, options, resume })
}

/// Where a run that fails mid-way saves its state without --save-state: beside the output.
fn default_state_path(target: &Target) -> PathBuf {
    match target {
        Target::Stdout => PathBuf::from("videossm.state.safetensors"),
        t => {
            let mut p = t.path().as_os_str().to_owned();
            p.push(".state.safetensors");
            PathBuf::from(p)
        }
    }
}

/// The `VIDEOSSM_FAULT_AFTER_CHUNKS` test hook (see the module doc).
fn fault_hook() -> Result<Option<usize>> {
    match std::env::var("VIDEOSSM_FAULT_AFTER_CHUNKS") {
        Ok(v) => v.trim().parse().map(Some).map_err(|_| anyhow!("VIDEOSSM_FAULT_AFTER_CHUNKS {v:?}: use a number of chunks")),
        Err(_) => Ok(None),
    }
}

/// Lines typed on stdin, read on a thread so generation never waits for them.
fn stdin_prompts() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(std::result::Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub fn run(a: GenerateArgs, gpu: runtime::GpuOptions) -> Result<()> {
    let plan = plan(&a, gpu)?;
    let result = stream(&a, &plan);
    if result.is_err() && plan.created {
        // Leave no empty file behind for a run that never wrote a frame.
        plan.target.discard();
    }
    result
}

fn stream(a: &GenerateArgs, plan: &Plan) -> Result<()> {
    let pipeline = Pipeline::load(&a.model.dir()?, &plan.options)?;
    let fpb = pipeline.chunk_frames();
    let start = plan.resume.as_ref().map_or(0, |s| s.chunk);
    // Frames a saved run made but did not deliver come first (see `Session::hold`).
    let held = plan.resume.as_ref().map_or(0, |s| s.held.count());
    // Chunks to run: enough for `frames` new frames after `start`.
    let (mut chunks, mut n) = (0, held);
    while n < plan.frames {
        n += chunk_video_frames(start + chunks, fpb);
        chunks += 1;
    }
    let mut session = match &plan.resume {
        Some(state) => Session::restore(&pipeline, state)?,
        None => {
            let first = a.prompt.clone().or_else(|| plan.schedule.as_ref().map(|s| s.cues[0].prompt.clone())).unwrap_or_default();
            Session::with_chunks(&pipeline, &first, a.seed, Some(start + chunks))?
        }
    };
    if let (Some(p), Some(_)) = (&a.prompt, &plan.resume) {
        session.set_prompt(p)?;
    }
    let cues = plan.schedule.as_ref().map(|s| s.per_chunk(FPS, |f| chunk_of_frame(f, fpb))).unwrap_or_default();
    // A resumed run starts under the last cue at or before its first chunk.
    if let Some((_, p)) = cues.iter().rev().find(|(c, _)| *c <= start) {
        session.set_prompt(p)?;
    }
    let (width, height) = pipeline.frame_size();
    let mut writer = output::open(&plan.target, width, height, FPS)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                // Second Ctrl-C: the output is already valid up to the last chunk.
                std::process::exit(130);
            }
        })
        .context("installing the Ctrl-C handler")?;
    }
    let typed = a.interactive.then(stdin_prompts);
    let bar =
        if a.quiet { ProgressBar::hidden() } else { ProgressBar::with_draw_target(Some(chunks as u64), ProgressDrawTarget::stderr()) };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} chunk {pos}/{len} · {msg} · ETA {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let say = |m: String| {
        if !a.quiet {
            bar.suspend(|| eprintln!("{m}"));
        }
    };
    say(format!(
        "{} chunks, {} frames of {width}x{height} at {FPS} fps, seed {} → {}",
        chunks,
        plan.frames,
        session.seed(),
        plan.target.path().display()
    ));
    let fault_after = fault_hook()?;
    let t0 = Instant::now();
    let mut written = 0;
    let mut outcome = Ok(());
    let mut closed = false;
    // The state after the last chunk in the output, kept on the host: a GPU that is lost
    // can no longer be read, and resuming from here repeats or skips no frame. Without
    // the VAE caches, to keep the copy cheap: a state saved after a fault is latents-exact.
    let mut last = session.snapshot_latents().context("reading the initial session state")?;
    let mut failed = None;
    let mut stages = Stages::default();
    if chunks == 0 {
        // The held frames alone are enough: deliver what was asked, hold the rest again.
        let mut frames = session.take_held();
        session.hold(frames.split_off(plan.frames));
        writer.write(&frames).with_context(|| format!("writing {} held frames", frames.len()))?;
        written = frames.len();
        last = session.snapshot_latents()?;
    }
    for i in 0..chunks {
        let c = start + i;
        let mut next = cues.iter().rev().find(|(at, _)| *at == c && c != start).map(|(_, p)| p.clone());
        if let Some(rx) = &typed {
            while let Ok(line) = rx.try_recv() {
                if !line.trim().is_empty() {
                    next = Some(line.trim().to_string());
                }
            }
        }
        say(format!("chunk {c}: prompt {:?}", next.as_deref().unwrap_or(session.prompt())));
        // Frames past the asked length are held in the session (and its state), not dropped.
        let step = next.map_or(Ok(()), |p| session.set_prompt(&p)).and_then(|_| {
            let chunk = session.next_frames()?;
            stages.add(&chunk.timing);
            let mut frames = chunk.frames;
            session.hold(frames.split_off(frames.len().min(plan.frames - written)));
            Ok((frames, session.snapshot_latents()?))
        });
        let (frames, state) = match step {
            Ok(done) => done,
            Err(e) => {
                failed = Some((c, e));
                break;
            }
        };
        let keep = frames.len();
        match writer.write(&frames) {
            // A player reading stdout was closed: the viewer is done, not an error.
            Err(videossm::Error::Io { source, .. }) if plan.target == Target::Stdout && source.kind() == std::io::ErrorKind::BrokenPipe => {
                say(format!("stdout was closed after {written} frames: stopping"));
                closed = true;
                break;
            }
            Err(e) => {
                outcome = Err(anyhow::Error::from(e).context(format!("writing chunk {c}; {written} frames are in the file")));
                break;
            }
            Ok(()) => {}
        }
        written += keep;
        last = state;
        bar.inc(1);
        bar.set_message(format!("{written} frames · {:.2} frames/s", written as f64 / t0.elapsed().as_secs_f64()));
        if fault_after == Some(i + 1) {
            pipeline.gpu().device.destroy();
        }
        if stop.load(Ordering::SeqCst) && i + 1 < chunks {
            say(format!("interrupted: stopping after chunk {c}"));
            break;
        }
    }
    bar.finish_and_clear();
    if outcome.is_ok() && !closed {
        outcome = writer.finish().map_err(Into::into);
    }
    if let Some((c, e)) = failed {
        // The output is complete up to the last finished chunk; keep its state to go on from.
        let path = a.save_state.clone().unwrap_or_else(|| default_state_path(&plan.target));
        let after = last.chunk.checked_sub(1).map_or("before the first chunk".to_string(), |n| format!("after chunk {n}"));
        let saved = videossm::snapshot::save_session(&path, &last)
            .map(|_| format!("the state {after} is saved to {p}: continue with --resume {p}", p = path.display()));
        let saved = saved.unwrap_or_else(|s| format!("the state could not be saved: {s}"));
        let kept = match outcome {
            Ok(()) => format!("{written} frames are in {}", plan.target.path().display()),
            Err(w) => format!("the output could not be completed: {w:#}"),
        };
        return Err(anyhow::Error::from(e).context(format!("generating chunk {c} failed; {kept}; {saved}")));
    }
    if let Some(p) = &a.save_state {
        // The device is fine: with its VAE caches, a resume continues pixel for pixel.
        if last.chunk == session.chunk_index() {
            last = session.snapshot()?;
        }
        videossm::snapshot::save_session(p, &last)?;
        say(format!("state after chunk {} saved to {} (continue with --resume)", last.chunk.saturating_sub(1), p.display()));
    }
    outcome?;
    say(format!("wrote {written} frames to {} in {:.1} s", plan.target.path().display(), t0.elapsed().as_secs_f64()));
    say(stages.summary(&pipeline.text_stats()));
    Ok(())
}

/// Time per stage over a run, and the most device memory seen after a chunk.
#[derive(Default)]
struct Stages {
    chunks: usize,
    dit_seconds: f64,
    dit_calls: usize,
    vae_seconds: f64,
    allocated: Option<u64>,
}

impl Stages {
    fn add(&mut self, t: &videossm::generate::ChunkTiming) {
        self.chunks += 1;
        (self.dit_seconds, self.dit_calls, self.vae_seconds) =
            (self.dit_seconds + t.dit_seconds, self.dit_calls + t.dit_calls, self.vae_seconds + t.vae_seconds);
        self.allocated = self.allocated.max(t.allocated);
    }

    fn summary(&self, text: &graph::models::t5::EncodeStats) -> String {
        let per = |s: f64, n: usize| s / n.max(1) as f64;
        let mut line = format!(
            "stages: prompt {} tokens through umT5 in {:.2} s (last prompt); DiT {:.2} s per call ({} calls); VAE {:.2} s per chunk ({} chunks)",
            text.tokens,
            text.seconds,
            per(self.dit_seconds, self.dit_calls),
            self.dit_calls,
            per(self.vae_seconds, self.chunks),
            self.chunks
        );
        if let Some(a) = self.allocated {
            let grew = text.allocated_bytes.unwrap_or(text.piece_bytes);
            line += &format!(
                "; device memory {:.2} GiB after a chunk, {:.2} GiB with a prompt being encoded",
                a as f64 / (1u64 << 30) as f64,
                (a + grew) as f64 / (1u64 << 30) as f64
            );
        }
        line
    }
}
