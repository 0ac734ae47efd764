//! The page in headless Chromium: frames that change, a typed prompt taking effect
//! at the next chunk, pause and resume, the MP4 download, and a closed page freeing its session.
use super::super::support::{read_mp4, scratch};
use super::browser::Browser;
use super::client::Server;
use base64::Engine;
use std::time::Duration;

/// A hash of the canvas pixels (0 while nothing is drawn).
const CANVAS: &str = "(() => { const c = document.getElementById('view'); \
    if (window.videossm.shown === 0) return 0; \
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
    let h = 7; for (const v of d) h = (h * 31 + v) >>> 0; return h || 1 })()";

/// The download link's bytes, fetched by the page, in base64.
const DOWNLOAD: &str = "fetch(document.getElementById('download').href).then(r => r.arrayBuffer()).then(a => { \
    let s = ''; for (const x of new Uint8Array(a)) s += String.fromCharCode(x); return btoa(s) })";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_frames_switches_prompts_pauses_and_downloads() {
    let server = Server::start(&[]);
    let dir = scratch("serve-page");
    let mut b = Browser::open(&server.url("/"), dir.join("profile")).await;
    b.wait_for("window.videossm && window.videossm.messages.some(m => m.type === 'hello')").await;
    let idle_gpu = server.api("/api/status").await["gpu_bytes"].as_u64();

    b.type_into("prompt", "a cat sits").await;
    b.click("start").await;
    let id = b.wait_for("window.videossm.session").await.as_str().unwrap().to_string();

    // Frames are drawn, and they change over time.
    let first = b.wait_for(CANVAS).await;
    b.wait_for(&format!("{CANVAS} !== {first}")).await;
    let shot = b.screenshot().await;
    std::fs::write(dir.join("serve.png"), &shot).unwrap();
    if let Some(path) = std::env::var_os("VIDEOSSM_SCREENSHOT") {
        std::fs::write(path, &shot).unwrap();
    }
    assert!(shot.starts_with(b"\x89PNG"));

    // A typed prompt: the server names the next chunk to start, and the log shows it from there on.
    let before = server.api(&format!("/api/sessions/{id}")).await["chunks"].as_array().unwrap().len();
    b.type_into("prompt", "a dog runs").await;
    b.click("set").await;
    let from = b.wait_for("window.videossm.messages.filter(m => m.type === 'prompt').map(m => m.from_chunk + 1)[0]").await;
    let from = from.as_u64().unwrap() as usize - 1;
    // One chunk may be in progress, one more may have finished since the log was read.
    assert!((1..=before + 2).contains(&from), "the prompt was set from chunk {from}, with {before} chunks done");
    let log = loop {
        let log = server.api(&format!("/api/sessions/{id}")).await;
        if log["chunks"].as_array().unwrap().len() > from {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let prompts: Vec<&str> = log["chunks"].as_array().unwrap().iter().map(|c| c["prompt"].as_str().unwrap()).collect();
    assert!(prompts[..from].iter().all(|p| *p == "a cat sits") && prompts[from..].iter().all(|p| *p == "a dog runs"), "{prompts:?}");

    // Pause: no frame arrives while paused, even with time for several chunks; resume: they come again.
    b.click("pause").await;
    b.wait_for("window.videossm.phase === 'paused'").await;
    let held = b.eval("window.videossm.received").await;
    let chunks_then = server.api(&format!("/api/sessions/{id}")).await["chunks"].as_array().unwrap().len();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(b.eval("window.videossm.received").await, held, "frames arrived while paused");
    let chunks_now = server.api(&format!("/api/sessions/{id}")).await["chunks"].as_array().unwrap().len();
    // The thread finishes the chunk in progress, then waits.
    assert!(chunks_now <= chunks_then + 1, "{chunks_then} chunks at the pause, {chunks_now} after");
    b.click("resume").await;
    b.wait_for(&format!("window.videossm.received > {held}")).await;

    // The download link gives a valid MP4 of the chunks made so far.
    let data = b.eval(DOWNLOAD).await;
    let mp4 = dir.join("download.mp4");
    std::fs::write(&mp4, base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap()).unwrap()).unwrap();
    let (w, h, frames) = read_mp4(&mp4);
    assert_eq!((w, h), (32, 32));
    assert!(frames >= 9 + 12 * from && (frames - 9) % 12 == 0, "{frames} frames");

    b.click("stop").await;
    b.wait_for("window.videossm.phase === 'stopped'").await;
    server.wait_sessions(0).await;

    // Closing the page forgets the session and its video.
    b.click("start").await;
    b.wait_for(&format!("window.videossm.session !== '{id}' && window.videossm.chunks.length > 0")).await;
    drop(b);
    server.wait_sessions(0).await;
    let (status, _) = server.get(&format!("/api/sessions/{id}/video.mp4")).await;
    assert_eq!(status, 404);
    let gpu = server.api("/api/status").await["gpu_bytes"].as_u64();
    eprintln!("GPU memory idle {idle_gpu:?}, after the sessions {gpu:?}");
    if let (Some(idle), Some(now)) = (idle_gpu, gpu) {
        assert!(now <= idle, "GPU memory grew from {idle} to {now} bytes after every session ended");
    }
}
