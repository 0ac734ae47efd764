//! Text-to-video generation as a library: load a [`Pipeline`] once, open a
//! [`Session`] per video, pull chunks of RGB frames from it.
//!
//! ```no_run
//! use videossm::generate::{Pipeline, PipelineOptions, Session};
//! # fn main() -> videossm::Result<()> {
//! let pipeline = Pipeline::load("weights/tiny".as_ref(), &PipelineOptions::default())?;
//! let mut session = Session::new(&pipeline, "a red ball bouncing", 42)?;
//! for _ in 0..4 {
//!     let chunk = session.next_frames()?;
//!     println!("chunk {}: {} frames of {}x{}", chunk.index, chunk.frames.len(), chunk.width, chunk.height);
//! }
//! session.set_prompt("the ball rolls away")?;
//! let state = session.snapshot()?; // constant size: window, sinks, SSM state, RNG, position, prompt
//! # let _ = state; Ok(()) }
//! ```
mod model;
mod needs;
mod pipeline;
mod session;
mod stages;

pub use model::ModelFiles;
pub use needs::{parse_size, Needs, BUDGETS_GIB};
pub use pipeline::{Pipeline, PipelineOptions};
pub use session::{Chunk, ChunkTiming, Session, SessionState};
pub use stages::vae_budget;

/// Frame rate of Wan2.1 videos.
pub const FPS: f64 = 16.0;

/// Wan's VAE turns the very first latent frame into one video frame and every later
/// latent frame into 4 (temporal stride 4, causal).
pub const TEMPORAL_STRIDE: usize = 4;

/// Pixels per latent row/column (VAE) times the DiT's 2×2 patch: sizes must divide by this.
pub const SPATIAL_MULTIPLE: usize = 16;

/// Video frames that chunk `chunk` of `fpb` latent frames decodes to.
pub fn chunk_video_frames(chunk: usize, fpb: usize) -> usize {
    TEMPORAL_STRIDE * fpb - if chunk == 0 { TEMPORAL_STRIDE - 1 } else { 0 }
}

/// Chunks needed for `frames` video frames.
pub fn chunks_for_frames(frames: usize, fpb: usize) -> usize {
    // Chunk c ends at frame 4·fpb·(c+1) − 3.
    (frames + TEMPORAL_STRIDE - 1).div_ceil(TEMPORAL_STRIDE * fpb)
}

/// The chunk whose decoded frames hold video frame `frame`.
pub fn chunk_of_frame(frame: usize, fpb: usize) -> usize {
    (frame + TEMPORAL_STRIDE - 1) / (TEMPORAL_STRIDE * fpb)
}

/// One decoded RGB8 frame, rows top to bottom, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}
