//! Bad requests get clear errors and never stop another client's session.
use super::super::support::videossm;
use super::client::{Server, Ws};
use serde_json::Value;

fn error_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    v["error"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_other_sessions_go_on() {
    let server = Server::start(&["--max-sessions", "1"]);
    let mut a = Ws::connect(&server).await;
    a.send(r#"{"type": "start", "prompt": "a red ball", "seed": 3}"#).await;
    let id = a.expect("started").await["session"].as_str().unwrap().to_string();
    assert_eq!(a.expect("chunk").await["chunk"], 0);

    // HTTP: unknown sessions, pages and methods; no way out of the session folder.
    for path in ["/api/sessions/nope", "/api/sessions/nope/video.mp4", "/api/sessions/..%2F..%2Fetc%2Fpasswd/video.mp4"] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(error_of(&body).contains("unknown session"), "{path}: {}", error_of(&body));
    }
    let (status, body) = server.get("/etc/passwd").await;
    assert_eq!((status, error_of(&body).as_str()), (404, "no such page: /etc/passwd"));
    let (status, body) = server.request("POST", "/api/status", &[]).await;
    assert_eq!((status, error_of(&body).as_str()), (405, "only GET is served"));
    // An oversized request is refused by the HTTP layer before any handler.
    let huge = "x".repeat(1 << 20);
    let (status, _) = server.request("GET", "/", &[("x-padding", &huge)]).await;
    assert_eq!(status, 431, "a 1 MiB header");

    // WebSocket: malformed, out-of-order and oversized messages, and a busy server.
    let mut b = Ws::connect(&server).await;
    b.refused("not json", "malformed message").await;
    b.refused(r#"{"type": "dance"}"#, "unknown variant `dance`").await;
    b.refused(r#"{"type": "start"}"#, "missing field `prompt`").await;
    b.refused(r#"{"type": "start", "prompt": "p", "seed": -1}"#, "malformed message").await;
    b.refused(r#"{"type": "start", "prompt": "p", "extra": 1}"#, "unknown field `extra`").await;
    b.send_binary(vec![0; 16]).await;
    let m = b.expect("error").await;
    assert!(m["message"].as_str().unwrap().starts_with("binary messages are not commands"), "{m}");
    b.refused(r#"{"type": "prompt", "prompt": "a dog"}"#, "no session is running on this connection").await;
    b.refused(r#"{"type": "start", "prompt": "   "}"#, "prompt: is empty").await;
    let long = format!(r#"{{"type": "start", "prompt": "{}"}}"#, "a".repeat(1001));
    b.refused(&long, "prompt: 1001 characters; at most 1000 are accepted").await;
    b.send(r#"{"type": "start", "prompt": "a dog"}"#).await;
    let busy = b.expect("busy").await;
    assert!(busy["message"].as_str().unwrap().contains("all 1 generation slots are in use"), "{busy}");
    // Over the 16 KiB message limit: that connection is closed, nothing else.
    b.send(&"x".repeat(20 << 10)).await;
    assert!(b.next().await.is_none(), "an oversized message did not close its connection");

    // The first session went on through all of it, and takes a bad prompt without stopping.
    a.refused(&long.replace("start", "prompt"), "at most 1000").await;
    a.refused(r#"{"type": "start", "prompt": "again"}"#, "already running").await;
    let later = a.expect("chunk").await;
    assert!(later["chunk"].as_u64().unwrap() >= 1, "{later}");
    assert_eq!(server.api(&format!("/api/sessions/{id}")).await["phase"], "running");

    // Closing its connection frees the slot: another client can start.
    drop(a);
    server.wait_sessions(0).await;
    assert_eq!(server.get(&format!("/api/sessions/{id}")).await.0, 404);
    let mut c = Ws::connect(&server).await;
    c.send(r#"{"type": "start", "prompt": "a dog"}"#).await;
    c.expect("started").await;
    assert_eq!(c.expect("chunk").await["chunk"], 0);
}

#[test]
fn bad_serve_flags_say_the_allowed_range() {
    for (args, want) in [
        (&["--max-sessions", "0"][..], "--max-sessions 0: use 1..=64"),
        (&["--max-seconds", "0"][..], "--max-seconds 0: use 0.0625..=3600"),
        (&["--host", "nowhere"][..], "invalid value 'nowhere' for '--host <HOST>'"),
    ] {
        let out = videossm().arg("serve").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{args:?}: {want:?} not in {err}");
    }
}
