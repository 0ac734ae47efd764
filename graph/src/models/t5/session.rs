//! [`T5Encoder`]: the encoder run once per prompt, streamed: its weights stay on the
//! host and each layer runs as seven pieces, one per linear, each uploaded, run over
//! the prompt's valid tokens and released before the next, so the device holds one
//! linear at a time (umT5-XXL's largest, an FFN matrix, is 84 MB in bf16) and nothing
//! between prompts.
use super::graph::{build, Piece, Value};
use super::load::{embed, load, upload_linear, upload_params};
use super::weights::HostWeights;
use crate::error::{GraphError, Result};
use runtime::{DType, Gpu};
use std::sync::Arc;
use std::time::Instant;
use weights::{Checkpoint, T5Config};

/// What the last prompt's encoding cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EncodeStats {
    /// Valid tokens encoded (the prompt's, EOS included).
    pub tokens: usize,
    pub seconds: f64,
    /// The most device bytes one piece held at once: its linear's weights, its layer's
    /// norms and position bias, its planned activations, inputs and outputs (what the
    /// encoding adds to the device's peak).
    pub piece_bytes: u64,
    /// The same as the device allocator saw it (its growth over the encoding), where it reports.
    pub allocated_bytes: Option<u64>,
}

pub struct T5Encoder {
    gpu: Arc<Gpu>,
    pub cfg: T5Config,
    pub text_len: usize,
    wdtype: DType,
    weights: HostWeights,
    stats: EncodeStats,
}

impl T5Encoder {
    /// Validates `ck` (a umT5 encoder state dict, e.g. Wan's
    /// `models_t5_umt5-xxl-enc-bf16.pth`; strip any key prefix first with
    /// [`Checkpoint::strip_prefix`]) and keeps it (opened with [`Checkpoint::open_lazy`],
    /// in its file: each prompt reads it again); `encode` uploads its linears one at a
    /// time with their weights in `wdtype`, for prompts padded to `text_len`.
    pub fn load(gpu: Arc<Gpu>, ck: Checkpoint, cfg: &T5Config, text_len: usize, wdtype: DType) -> Result<T5Encoder> {
        if text_len == 0 {
            return Err(GraphError::input("text_len", "must be at least 1".into()));
        }
        let weights = load(cfg, ck)?;
        Ok(T5Encoder { gpu, cfg: cfg.clone(), text_len, wdtype, weights, stats: EncodeStats::default() })
    }

    /// Encodes `ids [text_len]` with `mask [text_len]` (1 for the tokens, then 0 for
    /// the padding, as the tokenizer makes them) into `[text_len, dim]`; the padding
    /// rows are zero. Only the valid tokens are encoded.
    pub fn encode(&mut self, ids: &[u32], mask: &[u32]) -> Result<Vec<f32>> {
        let l = self.text_len;
        if ids.len() != l || mask.len() != l {
            return Err(GraphError::input(
                "ids/mask",
                format!("{} ids and {} mask values for a text length of {l}", ids.len(), mask.len()),
            ));
        }
        if let Some(i) = ids.iter().position(|&id| id as usize >= self.cfg.vocab) {
            return Err(GraphError::input("ids", format!("id {} at position {i} is outside the vocabulary of {}", ids[i], self.cfg.vocab)));
        }
        let n = mask.iter().take_while(|&&m| m != 0).count();
        if let Some(i) = mask[n..].iter().position(|&m| m != 0) {
            return Err(GraphError::input(
                "mask",
                format!("position {} is 1 after padding starts at {n}: the mask must be 1s then 0s", n + i),
            ));
        }
        let mut out = vec![0.0; l * self.cfg.dim];
        if n == 0 {
            // Nothing attends: the official wrapper keeps no rows.
            return Ok(out);
        }
        let start = Instant::now();
        // Staging copies and dropped buffers of before go first (up to 64 MiB after a
        // model is loaded): the growth measured is then the encoding's own.
        self.gpu.flush()?;
        let base = self.gpu.memory().map(|m| m.allocated);
        let mut stats = EncodeStats { tokens: n, ..EncodeStats::default() };
        let mut values: [Vec<f32>; Value::COUNT] = Default::default();
        values[Value::X as usize] = embed(&self.weights, &self.cfg, &ids[..n])?;
        for i in 0..self.cfg.num_layers {
            let params = upload_params(&self.gpu, &self.cfg, &self.weights, i, n)?;
            for piece in Piece::LAYER {
                let linear = upload_linear(&self.gpu, &self.cfg, &self.weights, i, piece, self.wdtype)?;
                // Its staging copy goes now, before the piece's graph is compiled.
                self.gpu.flush()?;
                let mut g = build(&self.gpu, &self.cfg, i, piece, &linear, &params, n)?;
                let r = g.report();
                stats.piece_bytes = stats.piece_bytes.max(r.weight_bytes + r.planned_activation_bytes + r.io_bytes);
                if let (Some(b), Some(m)) = (base, self.gpu.memory()) {
                    stats.allocated_bytes = Some(stats.allocated_bytes.unwrap_or(0).max(m.allocated.saturating_sub(b)));
                }
                let (reads, makes) = piece.io();
                for &v in reads {
                    g.write(&self.gpu, v.name(), &values[v as usize])?;
                }
                g.run(&self.gpu)?;
                values[makes as usize] = g.read(&self.gpu, "y")?;
                // wgpu frees dropped buffers when the device is next polled: poll before
                // the next linear is uploaded, so that two are never held at once.
                drop((g, linear));
                self.gpu.flush()?;
            }
        }
        let x = &values[Value::X as usize];
        out[..n * self.cfg.dim].copy_from_slice(x);
        stats.seconds = start.elapsed().as_secs_f64();
        self.stats = stats;
        Ok(out)
    }

    /// What the last [`T5Encoder::encode`] cost.
    pub fn stats(&self) -> EncodeStats {
        self.stats
    }
}
