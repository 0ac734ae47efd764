//! The routes: the page, the WebSocket, and a small JSON API (server status, a
//! session's log, its MP4). Errors are JSON `{"error": "..."}` with a status code.
use super::{socket, App};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::sync::Arc;

const PAGE: &str = include_str!("page.html");

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/ws", get(upgrade))
        .route("/api/status", get(status))
        .route("/api/sessions/{id}", get(session_log))
        .route("/api/sessions/{id}/video.mp4", get(video))
        .fallback(|uri: Uri| async move { fail(StatusCode::NOT_FOUND, format!("no such page: {}", uri.path())) })
        .method_not_allowed_fallback(|| async { fail(StatusCode::METHOD_NOT_ALLOWED, "only GET is served") })
        .with_state(app)
}

fn fail(code: StatusCode, message: impl Into<String>) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], json!({ "error": message.into() }).to_string()).into_response()
}

fn ok_json(v: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

async fn upgrade(State(app): State<Arc<App>>, ws: WebSocketUpgrade) -> Response {
    let Ok(permit) = app.connections.clone().try_acquire_owned() else {
        return fail(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("busy: {} connections are open; try again later", app.limits.max_connections),
        );
    };
    let max = app.limits.max_message;
    ws.max_message_size(max).max_frame_size(max).on_upgrade(move |socket| socket::connection(app, socket, permit))
}

async fn status(State(app): State<Arc<App>>) -> Response {
    let (width, height) = app.pipeline.frame_size();
    ok_json(json!({
        "sessions": app.limits.max_sessions - app.slots.available_permits(),
        "max_sessions": app.limits.max_sessions,
        "connections": app.limits.max_connections - app.connections.available_permits(),
        "gpu_bytes": app.pipeline.gpu().memory().map(|m| m.allocated),
        "width": width, "height": height, "fps": crate::generate::FPS,
    }))
}

fn unknown(id: &str) -> Response {
    // Echo a bounded, printable form of the id only.
    let shown: String = id.chars().take(64).filter(|c| c.is_ascii_alphanumeric()).collect();
    fail(StatusCode::NOT_FOUND, format!("unknown session {shown:?}: sessions live as long as their page's connection"))
}

async fn session_log(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(s) = app.session(&id) else { return unknown(&id) };
    let st = s.lock();
    ok_json(json!({ "session": s.id, "phase": st.phase, "chunks": st.log, "next_chunk": st.started, "mp4_bytes": st.mp4_bytes }))
}

/// The session's MP4 up to its last whole fragment: a valid video of every chunk made so far.
async fn video(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(s) = app.session(&id) else { return unknown(&id) };
    let len = s.lock().mp4_bytes;
    if len == 0 {
        return fail(StatusCode::CONFLICT, "no chunk is finished yet: try again after the first frames show");
    }
    let path = s.mp4.clone();
    let read = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut buf = Vec::with_capacity(len as usize);
        std::fs::File::open(&path)?.take(len).read_to_end(&mut buf)?;
        Ok::<_, std::io::Error>(buf)
    });
    match read.await {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "video/mp4".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"videossm-{}.mp4\"", &s.id[..8])),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => fail(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the video: {e}")),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the video: {e}")),
    }
}
