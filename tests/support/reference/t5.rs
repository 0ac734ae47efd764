//! f64 reference of the umT5 encoder, written from ../shared/spec/TEXT_VAE.md C.1
//! and ../shared/parity/FORMAT.md as they read: a dense L×L score matrix per head
//! with the relative-position bias looked up entry by entry, padding keys
//! dropped from the softmax, padding rows zeroed at the end. No kernels.
use runtime::kernels::gelu_tanh;
use std::collections::BTreeMap;

pub struct Config {
    pub vocab: usize,
    pub dim: usize,
    pub dim_attn: usize,
    pub dim_ffn: usize,
    pub heads: usize,
    pub layers: usize,
    pub num_buckets: usize,
    pub shared_pos: bool,
}

const EPS: f64 = 1e-6;
const MAX_DISTANCE: f64 = 128.0;

/// Bucket of a key `rel` positions after its query: the upper half of the buckets
/// for keys after it; per half, exact below `n/4`, logarithmic up to 128 beyond.
pub fn bucket(rel: i64, num_buckets: usize) -> usize {
    let n = num_buckets / 2;
    let exact = n / 2;
    let offset = if rel > 0 { n } else { 0 };
    let dist = rel.unsigned_abs() as usize;
    if dist < exact {
        offset + dist
    } else {
        let scaled = (dist as f64 / exact as f64).ln() / (MAX_DISTANCE / exact as f64).ln() * (n - exact) as f64;
        offset + (exact + scaled.floor() as usize).min(n - 1)
    }
}

/// `y = x Wᵀ` for rows of `x` and `w [out, in]`.
fn linear(x: &[f64], w: &[f64], out: usize) -> Vec<f64> {
    let inp = w.len() / out;
    x.chunks(inp)
        .flat_map(|row| (0..out).map(move |o| row.iter().zip(&w[o * inp..(o + 1) * inp]).map(|(a, b)| a * b).sum::<f64>()))
        .collect()
}

fn rms_norm(x: &[f64], w: &[f64]) -> Vec<f64> {
    let d = w.len();
    x.chunks(d)
        .flat_map(|row| {
            let inv = 1.0 / (row.iter().map(|v| v * v).sum::<f64>() / d as f64 + EPS).sqrt();
            row.iter().zip(w).map(move |(v, g)| v * inv * g)
        })
        .collect()
}

/// `context [L, dim]` for `ids`, `mask` (`weights` by checkpoint key, as f32).
pub fn encode(cfg: &Config, weights: &BTreeMap<String, Vec<f32>>, ids: &[usize], mask: &[bool]) -> Vec<f32> {
    let w =
        |k: &str| -> Vec<f64> { weights.get(k).unwrap_or_else(|| panic!("reference: no tensor {k}")).iter().map(|&v| v as f64).collect() };
    let (l, d, a, h) = (ids.len(), cfg.dim, cfg.dim_attn, cfg.heads);
    let hd = a / h;
    let table = w("token_embedding.weight");
    let mut x: Vec<f64> = ids.iter().flat_map(|&id| table[id * d..(id + 1) * d].to_vec()).collect();
    for n in 0..cfg.layers {
        let p = format!("blocks.{n}");
        let pos = if cfg.shared_pos { w("pos_embedding.embedding.weight") } else { w(&format!("{p}.pos_embedding.embedding.weight")) };
        let xn = rms_norm(&x, &w(&format!("{p}.norm1.weight")));
        let q = linear(&xn, &w(&format!("{p}.attn.q.weight")), a);
        let k = linear(&xn, &w(&format!("{p}.attn.k.weight")), a);
        let v = linear(&xn, &w(&format!("{p}.attn.v.weight")), a);
        let mut att = vec![0.0; l * a];
        for head in 0..h {
            for i in 0..l {
                // No 1/√d scaling in T5.
                let scores: Vec<Option<f64>> = (0..l)
                    .map(|j| {
                        mask[j].then(|| {
                            let dot: f64 = (0..hd).map(|c| q[i * a + head * hd + c] * k[j * a + head * hd + c]).sum();
                            dot + pos[bucket(j as i64 - i as i64, cfg.num_buckets) * h + head]
                        })
                    })
                    .collect();
                let max = scores.iter().flatten().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| s.map_or(0.0, |s| (s - max).exp())).collect();
                let z: f64 = e.iter().sum();
                for c in 0..hd {
                    let o: f64 = (0..l).map(|j| e[j] * v[j * a + head * hd + c]).sum();
                    att[i * a + head * hd + c] = if z > 0.0 { o / z } else { 0.0 };
                }
            }
        }
        let o = linear(&att, &w(&format!("{p}.attn.o.weight")), d);
        x.iter_mut().zip(&o).for_each(|(x, o)| *x += o);
        let xn = rms_norm(&x, &w(&format!("{p}.norm2.weight")));
        let gate = linear(&xn, &w(&format!("{p}.ffn.gate.0.weight")), cfg.dim_ffn);
        let up = linear(&xn, &w(&format!("{p}.ffn.fc1.weight")), cfg.dim_ffn);
        let hidden: Vec<f64> = up.iter().zip(&gate).map(|(u, g)| u * gelu_tanh(*g)).collect();
        let f = linear(&hidden, &w(&format!("{p}.ffn.fc2.weight")), d);
        x.iter_mut().zip(&f).for_each(|(x, f)| *x += f);
    }
    let y = rms_norm(&x, &w("norm.weight"));
    y.chunks(d).zip(mask).flat_map(|(row, &m)| row.iter().map(move |&v| if m { v as f32 } else { 0.0 })).collect()
}
