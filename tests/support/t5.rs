//! Random umT5 checkpoints at any shape, for the GPU-vs-reference tests and the bench.
use crate::reference::t5::Config;
use crate::Rng;
use weights::{Checkpoint, HostTensor, T5Config};

/// Weights drawn like the official initialiser, except a relative-position table
/// of unit scale (so a wrong bucket is visible) and norms around 1.
pub fn random_checkpoint(cfg: &T5Config, seed: u64) -> Checkpoint {
    let mut rng = Rng::new(seed);
    let mut ck = Checkpoint { path: format!("random-t5-{seed}").into(), ..Default::default() };
    for e in cfg.expected_tensors().tensors {
        let n: usize = e.shape.iter().product();
        let fan_in = *e.shape.last().unwrap_or(&1) as f32;
        let v = if e.key.ends_with("norm1.weight") || e.key.ends_with("norm2.weight") || e.key == "norm.weight" {
            rng.normals(n, 0.1).into_iter().map(|x| 1.0 + x).collect()
        } else if e.key.starts_with("token_embedding") || e.key.contains("pos_embedding") {
            rng.normals(n, 1.0)
        } else {
            rng.normals(n, fan_in.powf(-0.5))
        };
        ck.tensors.insert(e.key, HostTensor::from_f32(e.shape, &v));
    }
    ck
}

pub fn reference_config(c: &T5Config) -> Config {
    Config {
        vocab: c.vocab,
        dim: c.dim,
        dim_attn: c.dim_attn,
        dim_ffn: c.dim_ffn,
        heads: c.num_heads,
        layers: c.num_layers,
        num_buckets: c.num_buckets,
        shared_pos: c.shared_pos,
    }
}

/// The checkpoint's tensors as the reference takes them.
pub fn host_weights(ck: &Checkpoint) -> std::collections::BTreeMap<String, Vec<f32>> {
    ck.tensors.iter().map(|(k, t)| (k.clone(), t.to_f32())).collect()
}
