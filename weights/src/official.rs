//! A model folder in the official Wan2.1-T2V-1.3B layout with random weights, written
//! tensor by tensor ([`crate::write`]), so that the full-size pipeline can be loaded,
//! measured and run where the real weights are not (about 17 GB, never committed):
//!
//! - `diffusion_pytorch_model-0000K-of-0000N.safetensors` + `….safetensors.index.json`, bf16
//! - `models_t5_umt5-xxl-enc-bf16.pth`, a PyTorch zip of bf16 storages
//! - `Wan2.1_VAE.pth` (the decoder half: all videossm reads), f32
//! - `google/umt5-xxl/tokenizer.json`, a SentencePiece-style Unigram model of umT5's vocabulary size
//! - `config.json`: Wan's fields plus the cache and memory settings
//! - `videossm_generator.pt`: a Self-Forcing-style checkpoint `{"generator": {"model.…": …}}`
//!   with the memory's keys, bf16, for `--generator`.
//!
//! Values are uniform with the std of [`crate::synthetic`]'s normals: cheaper to draw
//! by the billion, and just as good at keeping activations in range.
use crate::error::{io, Result};
use crate::synthetic::{dit_config_json, Rng, Scale, DIT, T5, VAE};
use crate::write::{safetensors, torch, Fill, Spec};
use crate::{DType, DitConfig, Expected, T5Config, VaeConfig};
use std::io::Write;
use std::path::Path;

/// The generator checkpoint's file name inside the folder.
pub const GENERATOR: &str = "videossm_generator.pt";

/// What to write: the three models' settings, the DiT's shard count and the seed.
pub struct Official {
    pub dit: DitConfig,
    pub t5: T5Config,
    pub vae: VaeConfig,
    pub shards: usize,
    pub seed: u64,
}

impl Official {
    /// Wan2.1-T2V-1.3B with umT5-XXL, the Wan2.1 VAE and a VideoSSM generator (B.6 memory).
    pub fn full_size(seed: u64) -> Official {
        Official { dit: DitConfig::wan2_1_t2v_1_3b(), t5: T5Config::umt5_xxl(), vae: VaeConfig::wan2_1(), shards: 2, seed }
    }

    /// Bytes the folder's tensors take.
    pub fn bytes(&self) -> u64 {
        let sum = |e: &Expected, d: DType| e.iter().map(|t| Spec::new(&t.key, d, &t.shape).bytes()).sum::<u64>();
        sum(&self.dit.expected_tensors(false), DType::BF16)
            + sum(&self.dit.expected_tensors(true), DType::BF16)
            + sum(&self.t5.expected_tensors(), DType::BF16)
            + sum(&self.vae.expected_tensors(), DType::F32)
    }

    /// Writes every file into `dir`; `progress` hears each file's name as it starts.
    pub fn write(&self, dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
        std::fs::create_dir_all(dir.join("google/umt5-xxl")).map_err(io(dir))?;
        let json = |name: &str, v: serde_json::Value| {
            let p = dir.join(name);
            std::fs::write(&p, serde_json::to_string_pretty(&v).expect("JSON values serialise")).map_err(io(&p))
        };
        let mut config = dit_config_json(&self.dit);
        config["_class_name"] = "WanModel".into();
        json("config.json", config)?;
        // The folder holds the published umT5 and VAE only at their published sizes; others say theirs.
        if self.t5 != T5Config::umt5_xxl() {
            json("t5_config.json", serde_json::to_value(&self.t5).expect("T5Config serialises"))?;
        }
        if self.vae != VaeConfig::wan2_1() {
            json("vae_config.json", serde_json::to_value(&self.vae).expect("VaeConfig serialises"))?;
        }
        let tok = dir.join("google/umt5-xxl/tokenizer.json");
        std::fs::write(&tok, unigram_tokenizer_json(self.t5.vocab)).map_err(io(&tok))?;

        let mut rng = Rng::new(self.seed);
        let specs = |e: Expected, d: DType, prefix: &str| {
            e.iter().map(|t| Spec::new(format!("{prefix}{}", t.key), d, &t.shape)).collect::<Vec<_>>()
        };
        let base = specs(self.dit.expected_tensors(false), DType::BF16, "");
        let shards = split(&base, self.shards.max(1));
        let mut map = serde_json::Map::new();
        for (k, shard) in shards.iter().enumerate() {
            let name = format!("diffusion_pytorch_model-{:05}-of-{:05}.safetensors", k + 1, shards.len());
            progress(&name);
            shard.iter().for_each(|s| drop(map.insert(s.key.clone(), name.clone().into())));
            safetensors(&dir.join(&name), shard, &mut draw(&DIT, "", &mut rng))?;
        }
        let total: u64 = base.iter().map(Spec::bytes).sum();
        json(
            "diffusion_pytorch_model.safetensors.index.json",
            serde_json::json!({ "metadata": { "total_size": total }, "weight_map": map }),
        )?;

        // (file, the dict wrapping the state dict, key prefix, tensors, scale)
        let t5 = specs(self.t5.expected_tensors(), DType::BF16, "");
        let vae = specs(self.vae.expected_tensors(), DType::F32, "");
        let generator = specs(self.dit.expected_tensors(true), DType::BF16, "model.");
        let files = [
            ("models_t5_umt5-xxl-enc-bf16.pth", None, "", t5, &T5),
            ("Wan2.1_VAE.pth", None, "", vae, &VAE),
            (GENERATOR, Some("generator"), "model.", generator, &DIT),
        ];
        for (name, wrapper, prefix, specs, scale) in files {
            progress(name);
            torch(&dir.join(name), wrapper, &specs, &mut draw(scale, prefix, &mut rng))?;
        }
        Ok(())
    }
}

/// `specs` in `n` consecutive runs of about equal bytes (Hugging Face's shard layout).
fn split(specs: &[Spec], n: usize) -> Vec<Vec<Spec>> {
    let total: u64 = specs.iter().map(Spec::bytes).sum();
    let mut out: Vec<Vec<Spec>> = vec![Vec::new()];
    let mut at = 0u64;
    for s in specs {
        if at >= total * out.len() as u64 / n as u64 && !out.last().expect("one shard at least").is_empty() {
            out.push(Vec::new());
        }
        at += s.bytes();
        out.last_mut().expect("one shard at least").push(s.clone());
    }
    out
}

/// Fills each tensor with uniform values of the mean and std `scale` gives its key
/// (`prefix` stripped), in blocks, as f32 or bf16 (rounded to nearest even).
fn draw<'a>(scale: &'a Scale, prefix: &'a str, rng: &'a mut Rng) -> Box<Fill<'a>> {
    Box::new(move |spec: &Spec, out: &mut dyn Write| {
        let key = spec.key.strip_prefix(prefix).unwrap_or(&spec.key);
        let (mean, std) = scale.of(key, &spec.shape);
        // Uniform on [mean − a, mean + a] has std a/√3.
        let a = std * 3f32.sqrt();
        let mut left = spec.numel();
        let mut buf = Vec::with_capacity(1 << 18);
        while left > 0 {
            let n = left.min(1 << 16);
            buf.clear();
            for _ in 0..n {
                let u = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
                let v = mean + a * (2.0 * u - 1.0);
                match spec.dtype {
                    DType::BF16 => {
                        let b = v.to_bits();
                        buf.extend_from_slice(&(((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16).to_le_bytes());
                    }
                    _ => buf.extend_from_slice(&v.to_le_bytes()),
                }
            }
            out.write_all(&buf)?;
            left -= n;
        }
        Ok(())
    })
}

/// A Unigram `tokenizer.json` behind a Metaspace pre-tokenizer, as umT5's is, with
/// `vocab` pieces: `<pad>` = 0, `</s>` = 1, `<unk>` = 2, whole words of the demo prompts,
/// every printable ASCII character (so any English prompt tokenizes), then fillers.
pub fn unigram_tokenizer_json(vocab: usize) -> String {
    let specials = ["<pad>", "</s>", "<unk>"].into_iter().map(|s| (s.to_string(), 0.0));
    let words = crate::synthetic::WORDS.iter().map(|w| (format!("▁{w}"), -5.0));
    let chars = (b'!'..=b'~').flat_map(|c| [(format!("▁{}", c as char), -10.0), ((c as char).to_string(), -10.0)]);
    let fillers = (0..).map(|i| (format!("▁filler{i}"), -30.0));
    let mut seen = std::collections::HashSet::new();
    let pieces: Vec<(String, f64)> = specials
        .chain(words)
        .chain(chars)
        .chain([("▁".to_string(), -10.0)])
        .chain(fillers)
        .filter(|p| seen.insert(p.0.clone()))
        .take(vocab)
        .collect();
    let special = |id: usize, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": true})
    };
    let metaspace = serde_json::json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true});
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(0, "<pad>"), special(1, "</s>"), special(2, "<unk>")],
        "normalizer": null, "pre_tokenizer": metaspace, "post_processor": null, "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": 2, "vocab": pieces, "byte_fallback": false},
    })
    .to_string()
}
