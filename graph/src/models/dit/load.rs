//! Uploading a checkpoint into [`DitWeights`], converting matmul weights to the
//! device dtype (norms, biases and modulations stay f32: they are tiny and the
//! kernels read them as f32).
use super::weights::{Block, CrossAttn, DitWeights, Head, Linear, Memory, MemoryForm, Norm, SelfAttn};
use crate::error::{GraphError, Result};
use runtime::{DType, Gpu, Tensor};
use weights::{Checkpoint, DitConfig, MemoryType};

struct Loader<'a> {
    gpu: &'a Gpu,
    ck: &'a Checkpoint,
    wdtype: DType,
}

fn weights_err(e: weights::WeightsError) -> GraphError {
    GraphError::Binding { name: "checkpoint".into(), message: e.to_string() }
}

impl Loader<'_> {
    fn host(&self, key: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self.ck.get(key).map_err(weights_err)?;
        Ok((t.shape.clone(), t.to_f32()))
    }

    fn f32(&self, key: &str) -> Result<Tensor> {
        let (shape, data) = self.host(key)?;
        Ok(self.gpu.upload(key, &shape, DType::F32, &data)?)
    }

    fn linear(&self, key: &str) -> Result<Linear> {
        let (shape, data) = self.host(&format!("{key}.weight"))?;
        // Conv3d patch embeddings `[D, C, 1, 2, 2]` are linears over the flattened patch.
        let bias = if self.ck.contains(&format!("{key}.bias")) { Some(self.f32(&format!("{key}.bias"))?) } else { None };
        Linear::upload(self.gpu, &format!("{key}.weight"), shape[0], shape[1..].iter().product(), self.wdtype, &data, bias)
    }

    /// `memory.{beta,alpha(,gate)}` stacked into one `[3H, D]` or `[2H, D]` linear,
    /// and B.6's output gate, norm and router.
    fn memory(&self, key: &str, kind: MemoryType) -> Result<Option<Memory>> {
        if !self.ck.contains(&format!("{key}.A_log")) {
            return Ok(None);
        }
        let parts: &[&str] = match kind {
            MemoryType::GatedLinear => &["beta", "alpha", "gate"],
            MemoryType::GatedDelta => &["beta", "alpha"],
        };
        let (mut w, mut b, mut rows, mut cols) = (Vec::new(), Vec::new(), 0, 0);
        for part in parts {
            let (shape, data) = self.host(&format!("{key}.{part}.weight"))?;
            (rows, cols) = (rows + shape[0], shape[1]);
            w.extend(data);
            let bias = format!("{key}.{part}.bias");
            // B.6's β has no bias (Eq. 5): zeros leave σ(W_β x) exact.
            b.extend(if self.ck.contains(&bias) { self.host(&bias)?.1 } else { vec![0.0; shape[0]] });
        }
        let bias = self.gpu.upload(&format!("{key}.gates.bias"), &[rows], DType::F32, &b)?;
        let gates = Linear::upload(self.gpu, &format!("{key}.gates.weight"), rows, cols, self.wdtype, &w, Some(bias))?;
        let form = match kind {
            MemoryType::GatedLinear => MemoryForm::GatedLinear,
            MemoryType::GatedDelta => {
                let mut consts = self.host(&format!("{key}.norm.weight"))?.1;
                consts.extend(self.host(&format!("{key}.router.weight"))?.1);
                consts.extend(self.host(&format!("{key}.router.bias"))?.1);
                let consts = self.gpu.upload(&format!("{key}.norm_router"), &[consts.len()], DType::F32, &consts)?;
                MemoryForm::GatedDelta { out_gate: self.linear(&format!("{key}.out_gate"))?, consts }
            }
        };
        Ok(Some(Memory { gates, a_log: self.f32(&format!("{key}.A_log"))?, form }))
    }
}

/// Validates `ck` against `cfg` (every problem at once) and uploads it.
/// `memory: false` drops the global memory of a checkpoint that has one (ablation).
pub fn load(gpu: &Gpu, cfg: &DitConfig, ck: &Checkpoint, wdtype: DType, memory: bool) -> Result<DitWeights> {
    let has_memory = ck.contains("blocks.0.self_attn.memory.A_log");
    ck.validate(&cfg.expected_tensors(has_memory)).map_err(weights_err)?;
    ck.check_finite().map_err(weights_err)?;
    let l = Loader { gpu, ck, wdtype };
    let blocks = (0..cfg.num_layers)
        .map(|n| {
            let p = format!("blocks.{n}");
            let s = format!("{p}.self_attn");
            let c = format!("{p}.cross_attn");
            Ok(Block {
                self_attn: SelfAttn {
                    q: l.linear(&format!("{s}.q"))?,
                    k: l.linear(&format!("{s}.k"))?,
                    v: l.linear(&format!("{s}.v"))?,
                    o: l.linear(&format!("{s}.o"))?,
                    norm_q: l.f32(&format!("{s}.norm_q.weight"))?,
                    norm_k: l.f32(&format!("{s}.norm_k.weight"))?,
                    memory: if memory { l.memory(&format!("{s}.memory"), cfg.memory())? } else { None },
                },
                cross_attn: CrossAttn {
                    q: l.linear(&format!("{c}.q"))?,
                    k: l.linear(&format!("{c}.k"))?,
                    v: l.linear(&format!("{c}.v"))?,
                    o: l.linear(&format!("{c}.o"))?,
                    norm_q: l.f32(&format!("{c}.norm_q.weight"))?,
                    norm_k: l.f32(&format!("{c}.norm_k.weight"))?,
                },
                norm3: if cfg.cross_attn_norm {
                    Some(Norm { weight: l.f32(&format!("{p}.norm3.weight"))?, bias: l.f32(&format!("{p}.norm3.bias"))? })
                } else {
                    None
                },
                ffn: [l.linear(&format!("{p}.ffn.0"))?, l.linear(&format!("{p}.ffn.2"))?],
                modulation: l.f32(&format!("{p}.modulation"))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DitWeights {
        patch_embedding: l.linear("patch_embedding")?,
        text_embedding: [l.linear("text_embedding.0")?, l.linear("text_embedding.2")?],
        time_embedding: [l.linear("time_embedding.0")?, l.linear("time_embedding.2")?],
        time_projection: l.linear("time_projection.1")?,
        blocks,
        head: Head { head: l.linear("head.head")?, modulation: l.f32("head.modulation")? },
    })
}
