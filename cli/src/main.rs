//! The `videossm` command line.
use clap::{Parser, Subcommand};
use runtime::GpuOptions;

mod info;

#[derive(Parser)]
#[command(name = "videossm", version, about = "Streaming text-to-video generation with hybrid state-space memory, on any GPU")]
struct Cli {
    /// Backend: auto, vulkan, metal, dx12 or gl (default: $VIDEOSSM_BACKEND or auto).
    #[arg(long, global = true)]
    backend: Option<String>,
    /// Adapter index or name substring as listed by `videossm info` (default: $VIDEOSSM_ADAPTER or the best one).
    #[arg(long, global = true)]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List GPU adapters with their backend, type, driver, features and limits.
    Info,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let mut gpu = GpuOptions::from_env();
    gpu.backend = cli.backend.or(gpu.backend);
    gpu.adapter = cli.adapter.or(gpu.adapter);
    let result = match cli.command {
        Command::Info => info::run(&gpu),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
