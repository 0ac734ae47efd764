//! `videossm info`: every adapter with its backend, type, driver, features and limits,
//! and whether the model (`--model`, or the embedded one) fits it at its configured
//! size: the model is loaded there and one session compiled, and the planner's figures
//! are checked against the adapter's limits.
use crate::generate_cli::ModelArgs;
use graph::GraphError;
use runtime::{list_adapters, GpuOptions, RuntimeError};
use videossm::generate::Needs;
use videossm::{Error, Pipeline, Session};

pub fn run(opts: &GpuOptions, model: &ModelArgs) -> anyhow::Result<()> {
    let adapters = list_adapters(opts)?;
    if adapters.is_empty() {
        anyhow::bail!("no GPU adapter found. On Linux without a GPU install Mesa's software driver: `apt-get install mesa-vulkan-drivers`");
    }
    let dir = model.dir()?;
    for a in adapters {
        let i = &a.info;
        println!("[{}] {}", a.index, i.name);
        println!("    backend      {:?}", i.backend);
        println!("    device type  {:?}", i.device_type);
        println!("    driver       {} {}", i.driver, i.driver_info);
        println!("    vendor/dev   {:#06x}/{:#06x}", i.vendor, i.device);
        if i.subgroup_max_size > 0 {
            println!("    subgroups    {}..{}", i.subgroup_min_size, i.subgroup_max_size);
        }
        let l = &a.limits;
        println!(
            "    limits       max_buffer_size {} B, max_storage_buffer_binding_size {} B,",
            l.max_buffer_size, l.max_storage_buffer_binding_size
        );
        println!(
            "                 workgroup storage {} B, invocations/workgroup {}, workgroups/dim {}, storage buffers/stage {}",
            l.max_compute_workgroup_storage_size,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension,
            l.max_storage_buffers_per_shader_stage
        );
        let wanted = [
            ("shader-f16", wgpu::Features::SHADER_F16),
            ("subgroups", wgpu::Features::SUBGROUP),
            ("cooperative-matrix", wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
            ("timestamp-query", wgpu::Features::TIMESTAMP_QUERY),
            ("timestamp-inside-passes", wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
        ];
        let have: Vec<&str> = wanted.iter().filter(|(_, f)| a.features.contains(*f)).map(|(n, _)| *n).collect();
        println!("    features     {}", if have.is_empty() { "(none of f16, subgroups, timestamps)".to_string() } else { have.join(", ") });
        println!("    all features {:?}", a.features);
        let mut options = model.options(opts.clone())?;
        options.gpu.adapter = Some(a.index.to_string());
        match fits(&dir, &options) {
            Ok(needs) => print_needs(&needs),
            Err(e) if resources(&e) => println!("    model        does not fit: {e}"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn fits(dir: &std::path::Path, options: &videossm::PipelineOptions) -> videossm::Result<Needs> {
    let p = Pipeline::load(dir, options)?;
    let (w, h) = p.frame_size();
    let memory = match p.memory() {
        Some(weights::MemoryType::GatedDelta) => format!("gated_delta (B.6), horizon {} frames", p.config.memory_horizon.unwrap_or(0)),
        Some(m) => format!("{m} (B.3)"),
        None => "off".into(),
    };
    println!(
        "    model        {} at {w}x{h}, {} weights, window {} latent frames, memory {memory}",
        dir.display(),
        p.dtype,
        p.config.local_attn_size
    );
    Session::new(&p, "a red ball", 0)?.needs()
}

/// Errors that say the adapter is too small, rather than the model or flags bad.
fn resources(e: &Error) -> bool {
    let runtime = match e {
        Error::Runtime(r) | Error::Graph(GraphError::Runtime(r)) | Error::Graph(GraphError::Op { source: r, .. }) => r,
        _ => return false,
    };
    matches!(runtime, RuntimeError::LimitExceeded { .. } | RuntimeError::OutOfMemory { .. } | RuntimeError::RequestDevice { .. })
}

fn print_needs(n: &Needs) {
    let mib = |b: u64| format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64);
    let weights: Vec<String> = n.weights.iter().map(|((m, d), b)| format!("{m} {d} {}", mib(*b))).collect();
    println!("      weights    {} ({})", mib(n.weight_bytes()), weights.join(", "));
    println!("      state      {} (KV window, sinks, SSM), VAE caches {}", mib(n.state_bytes), mib(n.vae_cache_bytes));
    let acts: Vec<String> = n.activations.iter().map(|(m, b)| format!("{m} {}", mib(*b))).collect();
    println!("      activations {} (planned with reuse, inputs and outputs included)", acts.join(", "));
    println!("      largest    {} {}", n.largest.0, mib(n.largest.1));
    let held = n.allocated.map_or(String::new(), |b| format!(", {} allocated on the device with the DiT and umT5 compiled", mib(b)));
    println!("      total      {} needed{held}; wgpu reports no adapter memory size, compare with the card's", mib(n.total()));
    match n.problems.as_slice() {
        [] => println!("      fits       yes: every tensor fits one storage binding"),
        p => println!("      fits       does not fit: {}", p.join("; ")),
    }
}
