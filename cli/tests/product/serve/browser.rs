//! Headless Chromium driven over the DevTools protocol (JSON over a WebSocket), so
//! the only thing CI installs is the browser: `apt-get install chromium` (.ci/run does).
use super::client::PATIENCE;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Flags that keep Chromium off the network and quiet on a closed CI machine.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=900,900",
    "--remote-debugging-port=0",
];

/// One browser with one page; the process is killed when dropped.
pub struct Browser {
    child: Child,
    page: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
}

/// `$CHROMIUM`, or Debian's `chromium`.
fn executable() -> PathBuf {
    let path = std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(
        path.is_file(),
        "{}: no Chromium for the serve page test; install it with `apt-get install chromium` (.ci/run does) or set CHROMIUM to its path",
        path.display()
    );
    path
}

impl Browser {
    /// Starts Chromium with a fresh profile and opens `url` in a new page.
    pub async fn open(url: &str, profile: PathBuf) -> Browser {
        let mut child = Command::new(executable())
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let endpoint = loop {
            let Some(Ok(line)) = lines.next() else { panic!("chromium exited before its DevTools endpoint:\n{}", seen.join("\n")) };
            if let Some(rest) = line.strip_prefix("DevTools listening on ") {
                break rest.trim().to_string();
            }
            seen.push(line);
        };
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        // ws://127.0.0.1:PORT/devtools/browser/ID: create the page there, then drive it on its own socket.
        let host = endpoint.trim_start_matches("ws://").split('/').next().unwrap().to_string();
        let (browser, _) = tokio_tungstenite::connect_async(&endpoint).await.unwrap();
        let mut b = Browser { child, page: browser, next_id: 0 };
        let target = b.call("Target.createTarget", json!({ "url": url })).await["targetId"].as_str().unwrap().to_string();
        let (page, _) = tokio_tungstenite::connect_async(format!("ws://{host}/devtools/page/{target}")).await.unwrap();
        b.page = page;
        b
    }

    /// One DevTools command; its result (events in between are skipped).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.page.send(Message::text(json!({ "id": id, "method": method, "params": params }).to_string())).await.unwrap();
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.page.next()).await.expect("no answer from chromium");
            let Some(Ok(Message::Text(t))) = msg else {
                assert!(matches!(msg, Some(Ok(_))), "chromium closed the DevTools socket during {method}");
                continue;
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    pub async fn eval(&mut self, js: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({ "expression": js, "awaitPromise": true, "returnByValue": true })).await;
        assert!(r.get("exceptionDetails").is_none(), "{js}: {}", r["exceptionDetails"]);
        r["result"]["value"].clone()
    }

    /// Polls `js` until it is truthy, returning its value.
    pub async fn wait_for(&mut self, js: &str) -> Value {
        let t0 = std::time::Instant::now();
        loop {
            let v = self.eval(js).await;
            if !(v.is_null() || v == false || v == 0) {
                return v;
            }
            assert!(t0.elapsed() < PATIENCE, "never true: {js}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Replaces the text of input `id` as typed keys would.
    pub async fn type_into(&mut self, id: &str, text: &str) {
        self.eval(&format!("(() => {{ const e = document.getElementById('{id}'); e.focus(); e.select(); return true }})()")).await;
        self.call("Input.insertText", json!({ "text": text })).await;
    }

    pub async fn click(&mut self, id: &str) {
        self.eval(&format!("document.getElementById('{id}').click()")).await;
    }

    /// A PNG of the page as shown.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" })).await;
        base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
