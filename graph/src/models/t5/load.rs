//! Uploading a checkpoint into [`T5Weights`] through the prefix loader. Matmul
//! weights take the device dtype; norms stay f32; the token table is f32 for f32
//! weights and bf16 otherwise (umT5 ships in bf16, so that is lossless for it),
//! split into slices that each fit one storage binding.
use super::weights::{Attn, Block, Ffn, RelativeEmbedding, T5Weights};
use crate::error::Result;
use crate::models::linear::Linear;
use runtime::{DType, Gpu, Tensor};
use weights::{Checkpoint, Prefix, T5Config, TensorView};

struct Up<'a> {
    gpu: &'a Gpu,
    wdtype: DType,
}

impl Up<'_> {
    fn f32(&self, vb: &Prefix, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = vb.get(name, shape)?;
        Ok(self.gpu.upload(&vb.key(name), shape, DType::F32, &t.to_f32())?)
    }

    /// An `nn.Linear` without bias, `[out, in]`, stored as the matmul reads it, `[in, out]`.
    fn linear(&self, vb: &Prefix, out: usize, inp: usize) -> Result<Linear> {
        let w = vb.get("weight", &[out, inp])?.to_f32();
        Linear::upload(self.gpu, &vb.key("weight"), out, inp, self.wdtype, &w, None)
    }

    fn relative(vb: &Prefix, cfg: &T5Config) -> Result<RelativeEmbedding> {
        Ok(RelativeEmbedding { embedding: vb.get("embedding.weight", &[cfg.num_buckets, cfg.num_heads])?.to_f32() })
    }

    fn token_embedding(&self, vb: &Prefix, cfg: &T5Config) -> Result<Vec<(Tensor, usize)>> {
        let key = vb.key("weight");
        let t = vb.get("weight", &[cfg.vocab, cfg.dim])?;
        let dtype = if self.wdtype == DType::F32 { DType::F32 } else { DType::BF16 };
        // Whole rows per slice, an even count so bf16 slices start on a word.
        let rows = ((self.gpu.max_binding() / (cfg.dim * dtype.size()) as u64) as usize & !1).clamp(2, cfg.vocab.max(2));
        let row_bytes = cfg.dim * t.dtype.size();
        (0..cfg.vocab)
            .step_by(rows)
            .map(|first| {
                let n = rows.min(cfg.vocab - first);
                let shape = [n, cfg.dim];
                let bytes = &t.data[first * row_bytes..(first + n) * row_bytes];
                let view = TensorView { name: &key, shape: &shape, dtype: t.dtype, bytes };
                Ok((self.gpu.upload(&format!("{key}[{first}..]"), &shape, dtype, &view.to_f32())?, first))
            })
            .collect()
    }
}

/// Checks `ck` against `cfg` (shapes, dtypes, no tensor left over, finite values) and uploads it.
pub fn load(gpu: &Gpu, cfg: &T5Config, ck: &Checkpoint, wdtype: DType) -> Result<T5Weights> {
    let loader = weights::Loader::validated(ck, cfg.expected_tensors())?;
    let vb = loader.root();
    let up = Up { gpu, wdtype };
    let (d, a, f) = (cfg.dim, cfg.dim_attn, cfg.dim_ffn);
    let blocks = (0..cfg.num_layers)
        .map(|n| {
            let b = vb.pp("blocks").pp(n);
            let (attn, ffn) = (b.pp("attn"), b.pp("ffn"));
            Ok(Block {
                norm1: up.f32(&b.pp("norm1"), "weight", &[d])?,
                attn: Attn {
                    q: up.linear(&attn.pp("q"), a, d)?,
                    k: up.linear(&attn.pp("k"), a, d)?,
                    v: up.linear(&attn.pp("v"), a, d)?,
                    o: up.linear(&attn.pp("o"), d, a)?,
                },
                norm2: up.f32(&b.pp("norm2"), "weight", &[d])?,
                ffn: Ffn {
                    gate: up.linear(&ffn.pp("gate").pp(0), f, d)?,
                    fc1: up.linear(&ffn.pp("fc1"), f, d)?,
                    fc2: up.linear(&ffn.pp("fc2"), d, f)?,
                },
                pos_embedding: if cfg.shared_pos { None } else { Some(Up::relative(&b.pp("pos_embedding"), cfg)?) },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let w = T5Weights {
        token_embedding: up.token_embedding(&vb.pp("token_embedding"), cfg)?,
        pos_embedding: if cfg.shared_pos { Some(Up::relative(&vb.pp("pos_embedding"), cfg)?) } else { None },
        blocks,
        norm: up.f32(&vb.pp("norm"), "weight", &[d])?,
    };
    loader.finish();
    Ok(w)
}
