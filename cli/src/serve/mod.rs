//! `videossm serve`: watch a video being made in the browser and steer it.
//!
//! One page ([`page.html`](page.html)) talks to the server over one WebSocket: JSON
//! commands (start, prompt, pause, resume, stop) in; JSON progress and one binary
//! message per frame (a PNG) out. Each connection runs at most one session on its own
//! thread, on one of `max_sessions` GPU slots; the rest get a "busy" message. The
//! only files a browser can reach are the MP4s of its sessions, named by random ids.
mod http;
mod session;
mod socket;

use crate::generate::Pipeline;
use session::Shared;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// What one server accepts.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Sessions generating at once (each holds its own window, SSM state and decoder on the GPU).
    pub max_sessions: usize,
    /// Open WebSocket connections.
    pub max_connections: usize,
    /// Characters in a prompt.
    pub max_prompt: usize,
    /// Bytes in one WebSocket message from a browser.
    pub max_message: usize,
    /// Chunks per session (its length limit).
    pub max_chunks: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_sessions: 2, max_connections: 32, max_prompt: 1000, max_message: 16 << 10, max_chunks: 1000 }
    }
}

/// The server's state: the loaded model, the limits, and the live sessions by id.
pub struct App {
    pipeline: Arc<Pipeline>,
    limits: Limits,
    slots: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    sessions: Mutex<HashMap<String, Arc<Shared>>>,
    /// Where the sessions' MP4s are written.
    dir: PathBuf,
}

impl App {
    /// `dir` must exist; the server writes only `<session id>.mp4` files into it.
    pub fn new(pipeline: Arc<Pipeline>, limits: Limits, dir: PathBuf) -> Arc<App> {
        Arc::new(App {
            pipeline,
            slots: Arc::new(Semaphore::new(limits.max_sessions)),
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            sessions: Mutex::new(HashMap::new()),
            dir,
        })
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Shared>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn register(&self, s: Arc<Shared>) {
        self.registry().insert(s.id.clone(), s);
    }

    fn forget(&self, id: &str) {
        self.registry().remove(id);
    }

    fn session(&self, id: &str) -> Option<Arc<Shared>> {
        self.registry().get(id).cloned()
    }
}

/// Serves `app` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) -> std::io::Result<()> {
    axum::serve(listener, http::router(app)).await
}

/// 128 random bits as hex: session ids are not guessable, so one browser cannot reach another's video.
fn new_id() -> String {
    // RandomState is seeded from the OS's random source, once per instance.
    let half = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.finish()
    };
    format!("{:016x}{:016x}", half(), half())
}
