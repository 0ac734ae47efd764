//! The default model, compiled into the binary (`weights/tiny/`, ~6 MB) so a fresh
//! checkout generates with no download. The model loaders read folders, so the files
//! are unpacked once into a cache folder keyed by their contents.
use anyhow::{Context, Result};
use std::path::PathBuf;

const FILES: &[(&str, &[u8])] = &[
    ("config.json", include_bytes!("../../weights/tiny/config.json")),
    ("generation.json", include_bytes!("../../weights/tiny/generation.json")),
    ("model.safetensors", include_bytes!("../../weights/tiny/model.safetensors")),
    ("t5_config.json", include_bytes!("../../weights/tiny/t5_config.json")),
    ("t5.safetensors", include_bytes!("../../weights/tiny/t5.safetensors")),
    ("tokenizer.json", include_bytes!("../../weights/tiny/tokenizer.json")),
    ("vae_config.json", include_bytes!("../../weights/tiny/vae_config.json")),
    ("vae.safetensors", include_bytes!("../../weights/tiny/vae.safetensors")),
];

/// FNV-1a over every file's name and bytes: a new model gets a new folder.
fn digest() -> u64 {
    FILES
        .iter()
        .flat_map(|(n, b)| n.as_bytes().iter().chain(b.iter()))
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// The folder holding the embedded model, unpacked on first use. Files are written
/// under a temporary name and renamed, so an interrupted unpack is never used.
pub fn model_dir() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("videossm-tiny-{:016x}", digest()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {} for the embedded model", dir.display()))?;
    for (name, bytes) in FILES {
        let path = dir.join(name);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
            continue;
        }
        let tmp = dir.join(format!("{name}.{}.part", std::process::id()));
        std::fs::write(&tmp, bytes).with_context(|| format!("unpacking the embedded model into {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("unpacking the embedded model into {}", path.display()))?;
    }
    Ok(dir)
}
