//! The `videossm` command line.
use clap::{Parser, Subcommand};
use runtime::{DType, Gpu, GpuOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use videossm::replay::ReplayOptions;
use weights::MemoryType;

mod embedded;
mod generate_cli;
mod info;
mod inspect_cli;
mod serve_cli;

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
    /// List GPU adapters with their backend, type, driver, features and limits, and whether the model fits each:
    /// its peak device memory by part, as allocated with a session open, against common budgets.
    Info {
        #[command(flatten)]
        model: Box<generate_cli::ModelArgs>,
        /// One JSON object per adapter, a line each (keys include peak_bytes and parts).
        #[arg(long)]
        json: bool,
    },
    /// Measure kernels and generation on this adapter (a table, or JSON with --json).
    Bench {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Chunks to generate with the small configuration.
        #[arg(long, default_value_t = 60)]
        chunks: usize,
        /// Matmul size (M = N = K).
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Self-attention window in latent frames for the generation run (-1 = unbounded).
        #[arg(long, default_value_t = 9, allow_negative_numbers = true)]
        window: i64,
        /// Generate without the SSM memory (window only).
        #[arg(long)]
        no_memory: bool,
        /// The memory form of the generation and soak runs (MEMORY.md B.3 or B.6).
        #[arg(long, default_value = "gated_linear", value_parser = parse_memory_type)]
        memory_type: MemoryType,
        /// Instead: a long run of this many chunks with the product tests' small model,
        /// recording time, GPU and host memory per chunk (they must stay flat).
        #[arg(long)]
        soak: Option<usize>,
        /// Instead: the full-size model's chunk (Wan2.1-T2V-1.3B with random bf16 weights, memory
        /// on, and the Wan2.1 VAE), profiled by kernel family with each family's share of peak.
        #[arg(long)]
        full: bool,
        /// With --full: the frame size WxH in pixels (multiples of 16); small ones let a
        /// software adapter run it.
        #[arg(long, default_value = "832x480", value_parser = videossm::bench_full::parse_frame)]
        frame: (usize, usize),
        /// With --full: run only this many of the DiT's 30 blocks (a quick check).
        #[arg(long)]
        layers: Option<usize>,
        /// With --full: the adapter's peak TFLOP/s as F32,F16 (its f16 matrix-unit peak for F16);
        /// measured by an FMA probe when not given.
        #[arg(long, value_parser = videossm::bench_full::parse_peak)]
        peak_tflops: Option<(f64, f64)>,
        /// Instead: render the `bench --json` files of several machines side by side (Markdown), no GPU needed.
        #[arg(long, num_args = 2.., value_name = "JSON")]
        compare: Vec<PathBuf>,
    },
    /// Generate a video from a prompt, written as it is made.
    Generate(Box<generate_cli::GenerateArgs>),
    /// Serve a page that shows the video as it is made and steers it with prompts.
    Serve(Box<serve_cli::ServeArgs>),
    /// Summarise a checkpoint (.safetensors, .index.json, .pt/.pth) and check it against the config beside it.
    Inspect {
        /// The checkpoint file.
        path: PathBuf,
    },
    /// Write a full-size model folder with random weights in the official Wan2.1-T2V-1.3B
    /// layout and dtypes (about 17 GB: DiT shards, umT5-XXL, the VAE, a VideoSSM generator),
    /// streamed tensor by tensor, to measure and run the full-size pipeline without the real weights.
    MakeFullSizeModel {
        /// The folder to write (created; existing files are overwritten).
        dir: PathBuf,
        /// Seed of the random weights.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Run a recorded bundle (../shared/parity layout) and write the tensors its expected.safetensors names.
    Replay {
        /// The bundle folder (config.json, generation.json, model.safetensors, inputs.safetensors).
        dir: PathBuf,
        /// Output safetensors file.
        #[arg(short, long)]
        output: PathBuf,
        /// Weight dtype on the device: f32, f16 or bf16.
        #[arg(long, default_value = "f32")]
        dtype: String,
        /// Run without the VideoSSM global memory even if the checkpoint has it (ablation).
        #[arg(long)]
        no_memory: bool,
    },
}

fn make_full_size_model(dir: &Path, seed: u64) -> anyhow::Result<()> {
    let model = weights::official::Official::full_size(seed);
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(500));
    bar.set_message(format!("writing {:.1} GB of random weights into {}", model.bytes() as f64 / 1e9, dir.display()));
    model.write(dir, &mut |file| bar.suspend(|| eprintln!("  {file}")))?;
    bar.finish_with_message(format!("wrote {}: pass --model {0} --generator {0}/{}", dir.display(), weights::official::GENERATOR));
    Ok(())
}

fn parse_memory_type(name: &str) -> Result<MemoryType, String> {
    let names: Vec<&str> = MemoryType::ALL.iter().map(|m| m.name()).collect();
    MemoryType::from_name(name).ok_or_else(|| format!("{name:?}: use {}", names.join(" or ")))
}

fn bench(gpu: &GpuOptions, json: bool, chunks: usize, size: usize, window: i64, memory: Option<MemoryType>) -> anyhow::Result<()> {
    if chunks == 0 || size == 0 {
        anyhow::bail!("--chunks and --size must be at least 1");
    }
    if window == 0 || window < -1 {
        anyhow::bail!("--window {window}: use -1 (unbounded) or a positive number of latent frames");
    }
    let gpu = Arc::new(Gpu::new(gpu)?);
    let report = videossm::bench::run(gpu, chunks, size, window, memory)?;
    if json {
        println!("{report:#}");
    } else {
        print!("{}", videossm::bench::table(&report));
    }
    Ok(())
}

fn bench_full(gpu: &GpuOptions, json: bool, opts: videossm::bench_full::FullOptions) -> anyhow::Result<()> {
    let mut gpu = Gpu::new(gpu)?;
    // The shaders a release build runs, also from a debug binary: the per-access clamps
    // change the timings, and the full-width register tiles take minutes to compile with
    // them on lavapipe. Every dispatch's bounds are still checked on the host (Kernel::check).
    gpu.checked_shaders = false;
    let gpu = Arc::new(gpu);
    let full = videossm::bench_full::run(gpu.clone(), &opts)?;
    let adapter = videossm::bench::adapter(&gpu);
    if json {
        println!("{:#}", serde_json::json!({ "adapter": adapter, "full": full }));
    } else {
        print!("{}", videossm::bench_full::table(&adapter, &full));
    }
    Ok(())
}

fn soak(gpu: GpuOptions, json: bool, chunks: usize, memory: MemoryType) -> anyhow::Result<()> {
    if !(2..=1_000_000).contains(&chunks) {
        anyhow::bail!("--soak {chunks}: use 2..=1000000 chunks");
    }
    let report = videossm::soak::run(gpu, chunks, memory)?;
    if json {
        println!("{report:#}");
    } else {
        print!("{}", videossm::soak::table(&report));
    }
    Ok(())
}

pub(crate) fn parse_dtype(s: &str) -> anyhow::Result<DType> {
    match s {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        _ => anyhow::bail!("--dtype {s:?}: use f32, f16 or bf16"),
    }
}

fn replay(gpu: &GpuOptions, dir: &Path, output: &Path, dtype: &str, no_memory: bool) -> anyhow::Result<()> {
    let opts = ReplayOptions { wdtype: parse_dtype(dtype)?, memory: !no_memory, ..Default::default() };
    if !dir.is_dir() {
        anyhow::bail!("{}: no such bundle folder", dir.display());
    }
    let gpu = Arc::new(Gpu::new(gpu)?);
    log::info!("replaying {} on {gpu}", dir.display());
    let tensors = videossm::replay::replay(gpu, dir, opts)?;
    videossm::replay::save(output, &tensors)?;
    eprintln!("wrote {} tensors to {}", tensors.len(), output.display());
    Ok(())
}

/// On a headless Linux box Mesa's Vulkan device-select layer looks for a Wayland and an X
/// display on every instance and prints `error: XDG_RUNTIME_DIR is invalid…` itself,
/// which reads as a failed run. With no display it has nothing to select by, so it is
/// turned off unless the user set `NODEVICE_SELECT` (before any thread exists).
fn quiet_headless_probes() {
    let headless = ["WAYLAND_DISPLAY", "DISPLAY"].iter().all(|k| std::env::var_os(k).is_none());
    if cfg!(target_os = "linux") && headless && std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn main() {
    quiet_headless_probes();
    // EGL reports a hardware driver it could not load before falling back to llvmpipe,
    // on every GL probe: noise unless asked for with RUST_LOG.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,wgpu_hal::gles::egl=off")).init();
    let cli = Cli::parse();
    let mut gpu = GpuOptions::from_env();
    gpu.backend = cli.backend.or(gpu.backend);
    gpu.adapter = cli.adapter.or(gpu.adapter);
    let result = match cli.command {
        Command::Info { model, json } => info::run(&gpu, &model, json),
        Command::Bench { compare, .. } if !compare.is_empty() => {
            videossm::bench_compare::load(&compare).map(|runs| print!("{}", videossm::bench_compare::table(&runs))).map_err(Into::into)
        }
        Command::Bench { json, soak: Some(chunks), memory_type: m, .. } => soak(gpu, json, chunks, m),
        Command::Bench { json, full: true, frame, layers, peak_tflops, .. } => {
            bench_full(&gpu, json, videossm::bench_full::FullOptions { frame, layers, peak_tflops })
        }
        Command::Bench { json, chunks, size, window, no_memory, memory_type: m, soak: None, .. } => {
            bench(&gpu, json, chunks, size, window, (!no_memory).then_some(m))
        }
        Command::Replay { dir, output, dtype, no_memory } => replay(&gpu, &dir, &output, &dtype, no_memory),
        Command::Generate(args) => generate_cli::run(*args, gpu),
        Command::Serve(args) => serve_cli::run(*args, gpu),
        Command::Inspect { path } => inspect_cli::run(&path),
        Command::MakeFullSizeModel { dir, seed } => make_full_size_model(&dir, seed),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
