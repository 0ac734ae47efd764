//! Uploading a checkpoint into [`DitWeights`] through the prefix loader, which checks
//! it against the config's tensor list first; matmul weights take the device dtype
//! (norms, biases and modulations stay f32: they are tiny and the kernels read them as f32).
use super::weights::{Attn, Block, DitWeights, Head, Linear, Memory, MemoryForm, Norm};
use crate::error::Result;
use runtime::{DType, Gpu, Tensor};
use weights::{Checkpoint, DitConfig, MemoryType, Prefix};

struct Up<'a> {
    gpu: &'a Gpu,
    wdtype: DType,
}

impl Up<'_> {
    fn host(vb: &Prefix, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        Ok(vb.get(name, shape)?.to_f32())
    }

    fn f32(&self, vb: &Prefix, name: &str, shape: &[usize]) -> Result<Tensor> {
        Ok(self.gpu.upload(&vb.key(name), shape, DType::F32, &Self::host(vb, name, shape)?)?)
    }

    /// `weight [out, in…]` (conv3d patch embeddings `[D, C, 1, 2, 2]` are linears over the
    /// flattened patch) and `bias [out]`.
    fn linear(&self, vb: &Prefix, shape: &[usize]) -> Result<Linear> {
        let (out, inp) = (shape[0], shape[1..].iter().product());
        let bias = self.f32(vb, "bias", &[out])?;
        Linear::upload_host(self.gpu, &vb.key("weight"), out, inp, self.wdtype, vb.get("weight", shape)?, Some(bias))
    }

    fn attn(&self, vb: &Prefix, d: usize, memory: Option<Memory>) -> Result<Attn> {
        Ok(Attn {
            q: self.linear(&vb.pp("q"), &[d, d])?,
            k: self.linear(&vb.pp("k"), &[d, d])?,
            v: self.linear(&vb.pp("v"), &[d, d])?,
            o: self.linear(&vb.pp("o"), &[d, d])?,
            norm_q: self.f32(vb, "norm_q.weight", &[d])?,
            norm_k: self.f32(vb, "norm_k.weight", &[d])?,
            memory,
        })
    }

    /// `memory.{beta,alpha(,gate)}` stacked into one `[3H, D]` or `[2H, D]` linear, and
    /// B.6's output gate, norm and router.
    fn memory(&self, vb: &Prefix, cfg: &DitConfig) -> Result<Memory> {
        let (d, h) = (cfg.dim, cfg.num_heads);
        let kind = cfg.memory();
        let parts: &[&str] = match kind {
            MemoryType::GatedLinear => &["beta", "alpha", "gate"],
            MemoryType::GatedDelta => &["beta", "alpha"],
        };
        let (mut w, mut b) = (Vec::new(), Vec::new());
        for part in parts {
            let p = vb.pp(part);
            w.extend(Self::host(&p, "weight", &[h, d])?);
            // B.6's β has no bias (Eq. 5): zeros leave σ(W_β x) exact.
            let no_bias = kind == MemoryType::GatedDelta && *part == "beta";
            b.extend(if no_bias { vec![0.0; h] } else { Self::host(&p, "bias", &[h])? });
        }
        let rows = parts.len() * h;
        let bias = self.gpu.upload(&vb.key("gates.bias"), &[rows], DType::F32, &b)?;
        let gates = Linear::upload(self.gpu, &vb.key("gates.weight"), rows, d, self.wdtype, &w, Some(bias))?;
        let form = match kind {
            MemoryType::GatedLinear => MemoryForm::GatedLinear,
            MemoryType::GatedDelta => {
                let mut consts = Self::host(vb, "norm.weight", &[cfg.head_dim()])?;
                consts.extend(Self::host(vb, "router.weight", &[d, 1])?);
                consts.extend(Self::host(vb, "router.bias", &[d])?);
                let consts = self.gpu.upload(&vb.key("norm_router"), &[consts.len()], DType::F32, &consts)?;
                MemoryForm::GatedDelta { out_gate: self.linear(&vb.pp("out_gate"), &[d, d])?, consts }
            }
        };
        Ok(Memory { gates, a_log: self.f32(vb, "A_log", &[h])?, form })
    }
}

/// Checks `ck` against `cfg` (every problem at once) and uploads it.
/// `memory: false` drops the global memory of a checkpoint that has one (ablation).
pub fn load(gpu: &Gpu, cfg: &DitConfig, ck: &Checkpoint, wdtype: DType, memory: bool) -> Result<DitWeights> {
    let has_memory = ck.contains("blocks.0.self_attn.memory.A_log");
    let loader = weights::Loader::validated(ck, cfg.expected_tensors(has_memory))?;
    let vb = loader.root();
    let up = Up { gpu, wdtype };
    let (d, f) = (cfg.dim, cfg.ffn_dim);
    let blocks = (0..cfg.num_layers)
        .map(|n| {
            let b = vb.pp("blocks").pp(n);
            let s = b.pp("self_attn");
            let memory = match (has_memory, memory) {
                (true, true) => Some(up.memory(&s.pp("memory"), cfg)?),
                (true, false) => {
                    s.skip("memory");
                    None
                }
                (false, _) => None,
            };
            Ok(Block {
                self_attn: up.attn(&s, d, memory)?,
                cross_attn: up.attn(&b.pp("cross_attn"), d, None)?,
                norm3: if cfg.cross_attn_norm {
                    Some(Norm { weight: up.f32(&b, "norm3.weight", &[d])?, bias: up.f32(&b, "norm3.bias", &[d])? })
                } else {
                    None
                },
                ffn: [up.linear(&b.pp("ffn.0"), &[f, d])?, up.linear(&b.pp("ffn.2"), &[d, f])?],
                modulation: up.f32(&b, "modulation", &[1, 6, d])?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let w = DitWeights {
        patch_embedding: up.linear(&vb.pp("patch_embedding"), &[d, cfg.in_dim, 1, 2, 2])?,
        text_embedding: [up.linear(&vb.pp("text_embedding.0"), &[d, cfg.text_dim])?, up.linear(&vb.pp("text_embedding.2"), &[d, d])?],
        time_embedding: [up.linear(&vb.pp("time_embedding.0"), &[d, cfg.freq_dim])?, up.linear(&vb.pp("time_embedding.2"), &[d, d])?],
        time_projection: up.linear(&vb.pp("time_projection.1"), &[6 * d, d])?,
        blocks,
        head: Head {
            head: up.linear(&vb.pp("head.head"), &[cfg.out_dim * 4, d])?,
            modulation: up.f32(&vb, "head.modulation", &[1, 2, d])?,
        },
    };
    loader.finish();
    Ok(w)
}
