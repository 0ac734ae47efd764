//! `videossm serve`: loads the model once, then serves the page on loopback (or
//! `--host`) until Ctrl-C. The sessions' MP4s live in a temporary folder removed at exit.
use crate::generate_cli::{ModelArgs, MAX_SECONDS};
use anyhow::{bail, Context, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use videossm::generate::{chunks_for_frames, Pipeline, FPS};
use videossm::serve::{App, Limits};

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on; anything but loopback exposes the server to the network.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Port (0 = any free port, printed at start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Sessions generating at once; further clients are told the server is busy.
    #[arg(long, default_value_t = 2)]
    max_sessions: usize,
    /// Longest video one session makes, in seconds.
    #[arg(long, default_value_t = 600.0)]
    max_seconds: f64,
}

pub fn run(a: ServeArgs, gpu: runtime::GpuOptions) -> Result<()> {
    if !(1..=64).contains(&a.max_sessions) {
        bail!("--max-sessions {}: use 1..=64", a.max_sessions);
    }
    if !(a.max_seconds.is_finite() && a.max_seconds * FPS >= 1.0 && a.max_seconds <= MAX_SECONDS) {
        bail!("--max-seconds {}: use {}..={MAX_SECONDS}", a.max_seconds, 1.0 / FPS);
    }
    let options = a.model.options(gpu)?;
    let pipeline = Arc::new(Pipeline::load(&a.model.dir()?, &options)?);
    let max_chunks = chunks_for_frames((a.max_seconds * FPS).round() as usize, pipeline.chunk_frames());
    let limits = Limits { max_sessions: a.max_sessions, max_chunks, ..Limits::default() };
    let dir = std::env::temp_dir().join(format!("videossm-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    {
        let dir = dir.clone();
        ctrlc::set_handler(move || {
            let _ = std::fs::remove_dir_all(&dir);
            std::process::exit(130);
        })
        .context("installing the Ctrl-C handler")?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("starting tokio")?;
    let result = runtime.block_on(async {
        let addr = SocketAddr::new(a.host, a.port);
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
        let (width, height) = pipeline.frame_size();
        eprintln!("listening on http://{} ({width}x{height} at {FPS} fps, {} sessions at once)", listener.local_addr()?, a.max_sessions);
        videossm::serve::serve(listener, App::new(pipeline, limits, dir.clone())).await.context("serving")
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}
