//! A `videossm serve` process on an ephemeral port, and plain HTTP / WebSocket clients for it.
use super::super::support::{model_dir, videossm};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Generous: a chunk of the small model takes about a second, a loaded CI machine more.
pub const PATIENCE: Duration = Duration::from_secs(300);

/// The server, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Server {
    /// `videossm serve --model <small model> --port 0 ARGS`, once it listens.
    pub fn start(args: &[&str]) -> Server {
        let mut c = videossm();
        c.args(["serve", "--port", "0", "--model"]).arg(model_dir()).args(args);
        let mut child = c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else { panic!("videossm serve exited before listening:\n{}", seen.join("\n")) };
            if let Some(rest) = line.strip_prefix("listening on http://") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
            seen.push(line);
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| eprintln!("[serve] {l}")));
        Server { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// (status, body) of `method path`, with extra `headers`.
    pub async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
        let stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder().method(method).uri(path).header("host", &self.addr);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = send.send_request(req.body(http_body_util::Empty::<hyper::body::Bytes>::new()).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    pub async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        self.request("GET", path, &[]).await
    }

    /// A JSON API answer that must succeed.
    pub async fn api(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    /// Waits until `/api/status` reports `n` sessions generating.
    pub async fn wait_sessions(&self, n: u64) {
        let t0 = std::time::Instant::now();
        while self.api("/api/status").await["sessions"] != n {
            assert!(t0.elapsed() < PATIENCE, "sessions never became {n}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebSocket client of the page's protocol, counting the binary frames it gets.
pub struct Ws {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    pub frames: usize,
}

impl Ws {
    /// Connects and reads the `hello` message.
    pub async fn connect(server: &Server) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await.unwrap();
        let mut ws = Ws { ws, frames: 0 };
        ws.expect("hello").await;
        ws
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.unwrap();
    }

    /// The next JSON message (frames are counted and skipped); `None` once the server closed.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("no message from the server");
            match msg {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Binary(_))) => self.frames += 1,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Skips to the next message of `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let m = self.next().await.unwrap_or_else(|| panic!("closed while waiting for {kind:?}"));
            if m["type"] == kind {
                return m;
            }
        }
    }

    /// Sends `text` and returns the error it gets, checking it names `want`.
    pub async fn refused(&mut self, text: &str, want: &str) {
        self.send(text).await;
        let m = self.expect("error").await;
        let message = m["message"].as_str().unwrap();
        assert!(message.contains(want), "{text:?}: {want:?} not in {message:?}");
    }
}
