//! One WebSocket connection: JSON commands in, JSON progress and binary PNG frames
//! out. A connection runs at most one session; closing it stops the session, frees
//! its GPU slot and deletes its MP4.
use super::session::{self, Event, Phase, Request, Shared};
use super::App;
use axum::extract::ws::{Message, WebSocket};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

/// What the page sends, one JSON object per text message.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    Start {
        prompt: String,
        #[serde(default)]
        seed: u64,
    },
    Prompt {
        prompt: String,
    },
    Pause,
    Resume,
    Stop,
}

/// The connection's session: its shared state, its events and its thread.
struct Running {
    shared: Arc<Shared>,
    events: mpsc::Receiver<Event>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Frames are held back (the thread stops at its next chunk).
    paused: bool,
    ended: bool,
}

fn error(message: impl Into<String>) -> Value {
    json!({ "type": "error", "message": message.into() })
}

/// The next event of a session that delivers frames; never resolves otherwise.
async fn next_event(run: &mut Option<Running>) -> Option<Event> {
    match run {
        Some(r) if !r.paused && !r.ended => r.events.recv().await,
        _ => std::future::pending().await,
    }
}

pub async fn connection(app: Arc<App>, mut ws: WebSocket, _connection: OwnedSemaphorePermit) {
    let (width, height) = app.pipeline.frame_size();
    let hello = json!({
        "type": "hello", "width": width, "height": height, "fps": crate::generate::FPS,
        "max_prompt": app.limits.max_prompt, "max_sessions": app.limits.max_sessions,
        "sessions": app.limits.max_sessions - app.slots.available_permits(),
    });
    let mut run: Option<Running> = None;
    if send(&mut ws, &hello).await.is_ok() {
        loop {
            tokio::select! {
                msg = ws.recv() => {
                    let reply = match msg {
                        Some(Ok(Message::Text(text))) => command(&app, &mut run, &text),
                        Some(Ok(Message::Binary(_))) => Some(error("binary messages are not commands: send JSON text, e.g. {\"type\":\"pause\"}")),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                        // Closed, or broken (e.g. a message over the size limit).
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    };
                    if let Some(reply) = reply {
                        if send(&mut ws, &reply).await.is_err() {
                            break;
                        }
                    }
                }
                event = next_event(&mut run) => {
                    if forward(&mut ws, &mut run, event).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    if let Some(r) = run.take() {
        tokio::task::spawn_blocking(move || finish(&app, r));
    }
}

async fn send(ws: &mut WebSocket, v: &Value) -> Result<(), axum::Error> {
    ws.send(Message::Text(v.to_string().into())).await
}

/// Sends one session event to the page.
async fn forward(ws: &mut WebSocket, run: &mut Option<Running>, event: Option<Event>) -> Result<(), axum::Error> {
    let Some(r) = run.as_mut() else { return Ok(()) };
    match event {
        Some(Event::Chunk(progress, frames)) => {
            let mut v = serde_json::to_value(&progress).unwrap_or_default();
            v["type"] = "chunk".into();
            send(ws, &v).await?;
            for png in frames {
                ws.send(Message::Binary(png.into())).await?;
            }
            Ok(())
        }
        Some(Event::Ended(phase, message)) => {
            r.ended = true;
            let chunks = r.shared.lock().log.len();
            send(ws, &json!({ "type": "ended", "phase": phase, "chunks": chunks, "message": message })).await
        }
        None => {
            r.ended = true;
            Ok(())
        }
    }
}

/// Acts on one text message; the reply, if any.
fn command(app: &Arc<App>, run: &mut Option<Running>, text: &str) -> Option<Value> {
    let cmd = match serde_json::from_str::<Command>(text) {
        Ok(c) => c,
        Err(e) => {
            return Some(error(format!(
                "malformed message ({e}): send {{\"type\": \"start\", \"prompt\": \"...\", \"seed\": 0}}, \
                 {{\"type\": \"prompt\", \"prompt\": \"...\"}}, or {{\"type\": \"pause\" | \"resume\" | \"stop\"}}"
            )))
        }
    };
    let active = run.as_mut().filter(|r| !r.ended);
    Some(match (cmd, active) {
        (Command::Start { .. }, Some(_)) => error("a session is already running on this connection: stop it first"),
        (Command::Start { prompt, seed }, None) => match check_prompt(app, &prompt) {
            Err(e) => e,
            Ok(prompt) => start(app, run, prompt, seed),
        },
        (Command::Prompt { .. } | Command::Pause | Command::Resume | Command::Stop, None) => {
            error("no session is running on this connection: send {\"type\": \"start\", \"prompt\": \"...\"} first")
        }
        (Command::Prompt { prompt }, Some(r)) => match check_prompt(app, &prompt) {
            Err(e) => e,
            Ok(prompt) => {
                let from = r.shared.update(|s| {
                    s.pending = Some(prompt.clone());
                    s.started
                });
                json!({ "type": "prompt", "prompt": prompt, "from_chunk": from })
            }
        },
        (Command::Pause, Some(r)) => {
            r.paused = true;
            r.shared.update(|s| s.phase = Phase::Paused);
            json!({ "type": "paused" })
        }
        (Command::Resume, Some(r)) => {
            r.paused = false;
            r.shared.update(|s| s.phase = Phase::Running);
            json!({ "type": "resumed" })
        }
        (Command::Stop, Some(r)) => {
            // Frames of the chunk in progress still come, then `ended`.
            r.paused = false;
            r.shared.update(|s| {
                s.stop = true;
                s.phase = Phase::Running;
            });
            json!({ "type": "stopping" })
        }
    })
}

/// A prompt within the limits, trimmed.
fn check_prompt(app: &App, prompt: &str) -> Result<String, Value> {
    let p = prompt.trim();
    let n = p.chars().count();
    if p.is_empty() {
        Err(error("prompt: is empty: describe the video, e.g. \"a red ball bouncing\""))
    } else if n > app.limits.max_prompt {
        Err(error(format!("prompt: {n} characters; at most {} are accepted", app.limits.max_prompt)))
    } else {
        Ok(p.to_string())
    }
}

/// Starts a session on a free GPU slot, or says the server is busy.
fn start(app: &Arc<App>, run: &mut Option<Running>, prompt: String, seed: u64) -> Value {
    let Ok(permit) = app.slots.clone().try_acquire_owned() else {
        return json!({
            "type": "busy",
            "message": format!("busy: all {} generation slots are in use; try again when a session ends", app.limits.max_sessions),
        });
    };
    // The previous, ended session of this connection makes way.
    if let Some(old) = run.take() {
        let app = app.clone();
        tokio::task::spawn_blocking(move || finish(&app, old));
    }
    let id = super::new_id();
    let shared = Arc::new(Shared::new(id.clone(), app.dir.join(format!("{id}.mp4"))));
    let (tx, events) = mpsc::channel(1);
    let request = Request { prompt: prompt.clone(), seed, max_chunks: app.limits.max_chunks };
    match session::spawn(app.pipeline.clone(), shared.clone(), request, tx, permit) {
        Ok(thread) => {
            app.register(shared.clone());
            *run = Some(Running { shared, events, thread: Some(thread), paused: false, ended: false });
            json!({
                "type": "started", "session": id, "prompt": prompt, "seed": seed,
                "download": format!("/api/sessions/{id}/video.mp4"), "log": format!("/api/sessions/{id}"),
            })
        }
        Err(e) => error(format!("could not start a session thread: {e}")),
    }
}

/// Stops a session, waits for its thread to free the GPU, forgets it and deletes its MP4.
fn finish(app: &App, mut r: Running) {
    r.shared.update(|s| s.stop = true);
    // A thread blocked on a full channel sees it closed.
    drop(r.events);
    if let Some(t) = r.thread.take() {
        let _ = t.join();
    }
    app.forget(&r.shared.id);
    let _ = std::fs::remove_file(&r.shared.mp4);
}
