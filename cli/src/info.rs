//! `videossm info`: every adapter with its backend, type, driver, features and limits,
//! and whether the model (`--model`, or the embedded one) fits it at its configured
//! size: the model is loaded there and one session compiled, and the planner's figures
//! are checked against the adapter's limits.
use crate::generate_cli::ModelArgs;
use graph::GraphError;
use runtime::{list_adapters, AdapterReport, GpuOptions, RuntimeError};
use videossm::generate::{Needs, BUDGETS_GIB};
use videossm::{Error, Pipeline, Session};

pub fn run(opts: &GpuOptions, model: &ModelArgs, json: bool) -> anyhow::Result<()> {
    let adapters = list_adapters(opts)?;
    if adapters.is_empty() {
        anyhow::bail!("no GPU adapter found. On Linux without a GPU install Mesa's software driver: `apt-get install mesa-vulkan-drivers`");
    }
    let dir = model.dir()?;
    for a in adapters {
        let mut options = model.options(opts.clone())?;
        options.gpu.adapter = Some(a.index.to_string());
        // The budget is reported against, not enforced: info says what would not fit.
        let budget = options.max_memory.take();
        let fit = fits(&dir, &options);
        if let Err(e) = &fit {
            if !resources(e) {
                return Err(anyhow::anyhow!("{e}"));
            }
        }
        if json {
            println!("{}", report_json(&a, &dir, fit, budget));
            continue;
        }
        print_adapter(&a);
        match fit {
            Ok((about, needs)) => {
                println!("    model        {about}");
                print_needs(&needs, budget);
            }
            Err(e) => println!("    model        does not fit: {e}"),
        }
    }
    Ok(())
}

fn print_adapter(a: &AdapterReport) {
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
    let have = features(a);
    println!("    features     {}", if have.is_empty() { "(none of f16, subgroups, timestamps)".to_string() } else { have.join(", ") });
    println!("    all features {:?}", a.features);
}

fn features(a: &AdapterReport) -> Vec<&'static str> {
    let wanted = [
        ("shader-f16", wgpu::Features::SHADER_F16),
        ("subgroups", wgpu::Features::SUBGROUP),
        ("cooperative-matrix", wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
        ("timestamp-query", wgpu::Features::TIMESTAMP_QUERY),
        ("timestamp-inside-passes", wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
    ];
    wanted.iter().filter(|(_, f)| a.features.contains(*f)).map(|(n, _)| *n).collect()
}

/// Loads the model on the adapter `options` names, opens one session (every graph
/// compiled, a prompt encoded) and reads what it holds: (a line about the model, its needs).
fn fits(dir: &std::path::Path, options: &videossm::PipelineOptions) -> videossm::Result<(String, Needs)> {
    let p = Pipeline::load(dir, options)?;
    let (w, h) = p.frame_size();
    let memory = match p.memory() {
        Some(weights::MemoryType::GatedDelta) => format!("gated_delta (B.6), horizon {} frames", p.config.memory_horizon.unwrap_or(0)),
        Some(m) => format!("{m} (B.3)"),
        None => "off".into(),
    };
    let about = format!(
        "{} at {w}x{h}, {} weights, window {} latent frames ({} sinks), memory {memory}",
        dir.display(),
        p.dtype,
        p.config.local_attn_size,
        p.config.sink_size
    );
    let needs = Session::new(&p, "a red ball", 0)?.needs()?;
    Ok((about, needs))
}

/// Errors that say the adapter is too small, rather than the model or flags bad.
fn resources(e: &Error) -> bool {
    let runtime = match e {
        Error::Runtime(r) | Error::Graph(GraphError::Runtime(r)) | Error::Graph(GraphError::Op { source: r, .. }) => r,
        _ => return false,
    };
    matches!(runtime, RuntimeError::LimitExceeded { .. } | RuntimeError::OutOfMemory { .. } | RuntimeError::RequestDevice { .. })
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

/// Which of the common budgets (and the user's) the peak fits.
fn budgets(n: &Needs, budget: Option<u64>) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = BUDGETS_GIB.iter().map(|&g| (format!("{g} GiB"), n.peak() <= g << 30)).collect();
    if let Some(b) = budget {
        out.push((format!("--max-memory {}", gib(b)), n.over_budget(b).is_none()));
    }
    out
}

fn print_needs(n: &Needs, budget: Option<u64>) {
    let source = if n.allocated.is_some() {
        "the device allocator's figure after compiling every graph"
    } else {
        "computed: this adapter reports no allocator figures"
    };
    println!("      peak       {} ({source}, plus encoding a prompt)", gib(n.peak()));
    for (what, bytes) in n.parts() {
        println!("        {:>10}  {what}", mib(bytes));
    }
    let acts: Vec<String> = n.activations.iter().map(|(m, b)| format!("{m} {}", mib(*b))).collect();
    println!("      graphs     {} (each planned alone; they share the activation buffers)", acts.join(", "));
    let t = &n.text;
    println!(
        "      prompt     umT5 streamed one linear at a time over {} tokens: {:.2} s, {} on the device at once",
        t.tokens,
        t.seconds,
        mib(n.text_bytes())
    );
    println!("      largest    {} {}", n.largest.0, mib(n.largest.1));
    let fit: Vec<String> = budgets(n, budget).into_iter().map(|(b, ok)| format!("{b} {}", if ok { "yes" } else { "no" })).collect();
    println!("      budgets    {}", fit.join(", "));
    match n.problems.as_slice() {
        [] => println!("      fits       yes: every tensor fits one storage binding"),
        p => println!("      fits       does not fit: {}", p.join("; ")),
    }
}

/// One adapter's report as a JSON object: `peak_bytes`, `parts` (name → bytes), `budgets`, or `error`.
fn report_json(a: &AdapterReport, dir: &std::path::Path, fit: videossm::Result<(String, Needs)>, budget: Option<u64>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "adapter": a.info.name, "backend": format!("{:?}", a.info.backend), "index": a.index,
        "features": features(a), "max_storage_buffer_binding_size": a.limits.max_storage_buffer_binding_size,
        "model": dir.display().to_string(),
    });
    match fit {
        Ok((about, n)) => {
            let parts: serde_json::Map<String, serde_json::Value> = n.parts().into_iter().map(|(k, b)| (k, b.into())).collect();
            let fits: serde_json::Map<String, serde_json::Value> = budgets(&n, budget).into_iter().map(|(k, ok)| (k, ok.into())).collect();
            v["about"] = about.into();
            v["peak_bytes"] = n.peak().into();
            v["allocated_bytes"] = n.allocated.into();
            v["parts"] = parts.into();
            v["budgets"] = fits.into();
            v["graphs"] = n.activations.iter().map(|(k, b)| serde_json::json!({"graph": k, "planned_bytes": b})).collect();
            v["prompt_encoding"] = serde_json::json!({"tokens": n.text.tokens, "seconds": n.text.seconds, "bytes": n.text_bytes()});
            v["largest_tensor"] = serde_json::json!({"what": n.largest.0, "bytes": n.largest.1});
            v["problems"] = n.problems.into();
        }
        Err(e) => v["error"] = e.to_string().into(),
    }
    v
}
