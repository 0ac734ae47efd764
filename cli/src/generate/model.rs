//! Where a model folder keeps its parts: videossm's own layout (`weights/tiny/`) or
//! the official Wan2.1-T2V-1.3B one, plus an optional Self-Forcing generator `.pt`.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use weights::{T5Config, VaeConfig};

/// The files of one model, found but not read. Parts not needed by every run
/// (text encoder, VAE) are looked up with [`ModelFiles::require`] when loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFiles {
    pub dir: PathBuf,
    /// DiT `config.json` (Wan's, plus `local_attn_size`, `sink_size`).
    pub config: PathBuf,
    /// `generation.json`; Self-Forcing's defaults at 480×832 when absent.
    pub generation: Option<PathBuf>,
    /// The DiT state dict: `model.safetensors`, Wan's (sharded) `diffusion_pytorch_model*`, or a generator `.pt`.
    pub dit: PathBuf,
    /// umT5 encoder: `t5.safetensors` with `t5_config.json`, or Wan's `.pth` with the published settings.
    pub t5: Option<PathBuf>,
    pub t5_config: Option<PathBuf>,
    pub vae: Option<PathBuf>,
    pub vae_config: Option<PathBuf>,
    pub tokenizer: Option<PathBuf>,
}

/// The first of `names` that exists in `dir`.
fn first(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

impl ModelFiles {
    /// Finds the parts in `dir`; `generator` replaces the DiT weights (a Self-Forcing
    /// or VideoSSM checkpoint over Wan's architecture).
    pub fn find(dir: &Path, generator: Option<&Path>) -> Result<ModelFiles> {
        if !dir.is_dir() {
            return Err(crate::error::invalid("--model", format!("{}: no such folder", dir.display())));
        }
        let missing = |file: &str, what: &str| Error::MissingFile { dir: dir.into(), file: file.into(), what: what.into() };
        let config = first(dir, &["config.json"]).ok_or_else(|| missing("config.json", "the DiT architecture (Wan config.json)"))?;
        let dit = match generator {
            Some(g) if g.is_file() => g.to_path_buf(),
            Some(g) => return Err(crate::error::invalid("--generator", format!("{}: no such file", g.display()))),
            None => {
                first(dir, &["model.safetensors", "diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors"])
                    .ok_or_else(|| {
                        missing(
                            "model.safetensors or diffusion_pytorch_model.safetensors[.index.json]",
                            "the DiT weights (or pass --generator FILE.pt)",
                        )
                    })?
            }
        };
        Ok(ModelFiles {
            dir: dir.into(),
            config,
            generation: first(dir, &["generation.json"]),
            dit,
            t5: first(dir, &["t5.safetensors", "models_t5_umt5-xxl-enc-bf16.pth"]),
            t5_config: first(dir, &["t5_config.json"]),
            vae: first(dir, &["vae.safetensors", "Wan2.1_VAE.pth"]),
            vae_config: first(dir, &["vae_config.json"]),
            tokenizer: first(dir, &["tokenizer.json", "google/umt5-xxl/tokenizer.json"]),
        })
    }

    /// `part` (one of this struct's optional files), or an error naming the files looked for.
    pub fn require<'a>(&self, part: &'a Option<PathBuf>, names: &str, what: &str) -> Result<&'a Path> {
        part.as_deref().ok_or_else(|| Error::MissingFile { dir: self.dir.clone(), file: names.into(), what: what.into() })
    }

    /// The text encoder's settings: `t5_config.json`, or umT5-XXL's.
    pub fn t5_config(&self) -> Result<T5Config> {
        Ok(match &self.t5_config {
            Some(p) => T5Config::load(p)?,
            // Wan ships the encoder without a config: its published settings.
            None => T5Config::umt5_xxl(),
        })
    }

    /// The VAE's settings: `vae_config.json`, or Wan2.1's.
    pub fn vae_config(&self) -> Result<VaeConfig> {
        Ok(match &self.vae_config {
            Some(p) => VaeConfig::load(p)?,
            None => VaeConfig::wan2_1(),
        })
    }
}
