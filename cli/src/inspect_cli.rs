//! `videossm inspect PATH`: what a checkpoint holds, and whether it matches the
//! config beside it (every missing, unexpected, mis-shaped or non-finite tensor).
use anyhow::Result;
use std::path::Path;
use weights::{Checkpoint, DitConfig, Kind, T5Config, VaeConfig};

/// The tensors the config beside `path` expects for a model of `kind`, and that config's name.
fn expected(path: &Path, kind: Kind) -> Result<Option<(weights::Expected, String)>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let find = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.is_file());
    Ok(match kind {
        Kind::Dit | Kind::DitMemory => match find(&["config.json"]) {
            Some(c) => Some((DitConfig::load(&c)?.expected_tensors(kind == Kind::DitMemory), c.display().to_string())),
            None => None,
        },
        Kind::T5 => match find(&["t5_config.json", "config.json"]) {
            Some(c) => Some((T5Config::load(&c)?.expected_tensors(), c.display().to_string())),
            None => None,
        },
        Kind::Vae => match find(&["vae_config.json", "config.json"]) {
            Some(c) => Some((VaeConfig::load(&c)?.expected_tensors(), c.display().to_string())),
            None => None,
        },
        Kind::Unknown => None,
    })
}

pub fn run(path: &Path) -> Result<()> {
    let s = weights::inspect(path)?;
    println!("{}", s.path.display());
    println!("  model       {}{}", s.kind, if s.prefix.is_empty() { String::new() } else { format!(" (under {})", s.prefix) });
    println!("  tensors     {}", s.tensors);
    let dtypes: Vec<String> = s.dtypes.iter().map(|(d, n)| format!("{n} {d:?}")).collect();
    println!("  dtypes      {}", dtypes.join(", "));
    println!("  parameters  {} ({:.1} M)", s.parameters, s.parameters as f64 / 1e6);
    println!("  bytes       {} ({:.1} MiB)", s.bytes, s.bytes as f64 / (1 << 20) as f64);
    let mut ck = Checkpoint::open(path)?;
    if !s.prefix.is_empty() {
        ck = ck.strip_prefix(&s.prefix)?;
    }
    let mut ok = true;
    if s.kind == Kind::DitMemory {
        // The keys tell the forms apart: B.6 alone has an output gate, B.3 alone a router gate.
        let form = if ck.contains("blocks.0.self_attn.memory.out_gate.weight") {
            "gated_delta keys (MEMORY.md B.6)"
        } else {
            "gated_linear keys (MEMORY.md B.3)"
        };
        let config = path.parent().unwrap_or(Path::new(".")).join("config.json");
        match DitConfig::load(&config) {
            Ok(c) if c.memory() == weights::MemoryType::GatedDelta => {
                println!("  memory      {form}; config: gated_delta, horizon {} latent frames", c.memory_horizon.unwrap_or(0))
            }
            Ok(c) => println!("  memory      {form}; config: {}", c.memory()),
            Err(_) => println!("  memory      {form}"),
        }
    }
    match expected(path, s.kind)? {
        Some((want, config)) => match ck.validate(&want) {
            Ok(()) => println!("  layout      matches {config}"),
            Err(e) => {
                ok = false;
                println!("  layout      does not match {config}:\n{e}");
            }
        },
        None => println!("  layout      not checked: no config beside the file"),
    }
    match ck.check_finite() {
        Ok(()) => println!("  values      all finite"),
        Err(e) => {
            ok = false;
            println!("  values      {e}");
        }
    }
    if !ok {
        anyhow::bail!("{}: the checkpoint has problems (listed above)", path.display());
    }
    Ok(())
}
