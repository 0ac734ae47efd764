//! One browser's generation session: a [`Session`] driven on its own thread (wgpu
//! calls block), steered through [`Shared`] and reporting through a channel. Each
//! chunk is appended to the session's fragmented MP4 before its frames are sent, so
//! the download is always a valid video of everything shown so far.
use crate::generate::{Pipeline, Session, FPS};
use crate::output::{self, Target};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

/// Where a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Running,
    Paused,
    /// Stopped by its client (button or disconnect).
    Stopped,
    /// Reached the server's length limit.
    Done,
    Failed,
}

/// One generated chunk, as the session log lists it.
#[derive(Clone, Debug, Serialize)]
pub struct ChunkLog {
    pub index: usize,
    pub prompt: String,
    pub frames: usize,
}

/// The figures the page shows after every chunk.
#[derive(Clone, Debug, Serialize)]
pub struct Progress {
    pub chunk: usize,
    pub prompt: String,
    /// Frames in this chunk (sent as binary messages right after).
    pub frames: usize,
    pub total_frames: usize,
    /// Frames per second of generation time (paused time left out).
    pub fps: f64,
    /// Bytes the device's allocator holds (all sessions and the model), when the backend reports it.
    pub gpu_bytes: Option<u64>,
    pub mp4_bytes: u64,
}

/// What the session thread tells its connection.
pub enum Event {
    /// A chunk's figures and its frames as PNG images.
    Chunk(Progress, Vec<Vec<u8>>),
    /// The thread has ended and freed its GPU memory.
    Ended(Phase, Option<String>),
}

/// The state both sides read: control from the connection, log from the thread.
#[derive(Debug)]
pub struct State {
    pub phase: Phase,
    pub stop: bool,
    /// A prompt for the next chunk to start.
    pub pending: Option<String>,
    /// Chunks whose prompt is fixed (the index of the next chunk to start).
    pub started: usize,
    pub log: Vec<ChunkLog>,
    /// Length of the MP4 up to its last whole fragment (what a download gets).
    pub mp4_bytes: u64,
}

/// A session as the server's registry and the API see it.
pub struct Shared {
    pub id: String,
    pub mp4: PathBuf,
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    pub fn new(id: String, mp4: PathBuf) -> Shared {
        let state = State { phase: Phase::Running, stop: false, pending: None, started: 0, log: Vec::new(), mp4_bytes: 0 };
        Shared { id, mp4, state: Mutex::new(state), wake: Condvar::new() }
    }

    /// The state; a panicked session thread leaves it consistent (each field is written whole).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the state and wakes a waiting session thread.
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.lock());
        self.wake.notify_all();
        r
    }

    /// Before chunk `index`: waits while paused; `None` when stopped, else the prompt to switch to.
    fn next_chunk(&self, index: usize) -> Option<Option<String>> {
        let mut s = self.lock();
        while s.phase == Phase::Paused && !s.stop {
            s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if s.stop {
            return None;
        }
        s.started = index + 1;
        Some(s.pending.take())
    }
}

/// What a session is asked to make.
pub struct Request {
    pub prompt: String,
    pub seed: u64,
    pub max_chunks: usize,
}

/// Starts the session thread; it holds `permit` (a GPU slot) until its GPU memory is freed.
pub fn spawn(
    pipeline: Arc<Pipeline>,
    shared: Arc<Shared>,
    request: Request,
    tx: mpsc::Sender<Event>,
    permit: OwnedSemaphorePermit,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(format!("session-{}", &shared.id[..8])).spawn(move || {
        let outcome = generate(&pipeline, &shared, &request, &tx);
        // The session (and its GPU buffers) is dropped by now; let the device reclaim them.
        let _ = pipeline.gpu().wait();
        drop(permit);
        let (phase, message) = match outcome {
            Ok(phase) => (phase, None),
            Err(e) => (Phase::Failed, Some(e.to_string())),
        };
        log::info!("session {}: {phase:?} {}", shared.id, message.as_deref().unwrap_or(""));
        shared.update(|s| s.phase = phase);
        let _ = tx.blocking_send(Event::Ended(phase, message));
    })
}

/// The chunk loop; returns how it ended.
fn generate(pipeline: &Pipeline, shared: &Shared, request: &Request, tx: &mpsc::Sender<Event>) -> crate::Result<Phase> {
    let mut session = Session::with_chunks(pipeline, &request.prompt, request.seed, Some(request.max_chunks))?;
    let (width, height) = pipeline.frame_size();
    let mut writer = output::open(&Target::Mp4(shared.mp4.clone()), width, height, FPS)?;
    let (mut busy, mut total_frames) = (Duration::ZERO, 0);
    for index in 0..request.max_chunks {
        let Some(prompt) = shared.next_chunk(index) else { return Ok(Phase::Stopped) };
        let t = Instant::now();
        if let Some(p) = prompt {
            session.set_prompt(&p)?;
        }
        let chunk = session.next_frames()?;
        writer.write(&chunk.frames)?;
        busy += t.elapsed();
        total_frames += chunk.frames.len();
        let mp4_bytes = std::fs::metadata(&shared.mp4).map_err(crate::error::io(&shared.mp4))?.len();
        let pngs = chunk.frames.iter().map(output::png_bytes).collect::<crate::Result<Vec<_>>>()?;
        shared.update(|s| {
            s.log.push(ChunkLog { index, prompt: chunk.prompt.clone(), frames: chunk.frames.len() });
            s.mp4_bytes = mp4_bytes;
        });
        let progress = Progress {
            chunk: index,
            prompt: chunk.prompt,
            frames: pngs.len(),
            total_frames,
            fps: total_frames as f64 / busy.as_secs_f64().max(1e-9),
            gpu_bytes: pipeline.gpu().memory().map(|m| m.allocated),
            mp4_bytes,
        };
        // Blocks while the connection still holds the last chunk (paused, or a slow link).
        if tx.blocking_send(Event::Chunk(progress, pngs)).is_err() {
            return Ok(Phase::Stopped);
        }
    }
    writer.finish()?;
    Ok(Phase::Done)
}
