//! [`T5Encoder`]: the compiled encoder for one text length, run once per prompt.
use super::graph::build;
use super::load::load;
use crate::error::{GraphError, Result};
use crate::executor::{CompileOptions, Compiled};
use runtime::{DType, Gpu};
use std::sync::Arc;
use weights::{Checkpoint, T5Config};

pub struct T5Encoder {
    gpu: Arc<Gpu>,
    pub cfg: T5Config,
    pub text_len: usize,
    graph: Compiled,
}

impl T5Encoder {
    /// Validates and uploads `ck` (a umT5 encoder state dict, e.g. Wan's
    /// `models_t5_umt5-xxl-enc-bf16.pth`; strip any key prefix first with
    /// [`Checkpoint::strip_prefix`]) with matmul weights in `wdtype`, and compiles
    /// the encoder for `text_len` tokens.
    pub fn load(gpu: Arc<Gpu>, ck: &Checkpoint, cfg: &T5Config, text_len: usize, wdtype: DType) -> Result<T5Encoder> {
        if text_len == 0 {
            return Err(GraphError::input("text_len", "must be at least 1".into()));
        }
        let weights = load(&gpu, cfg, ck, wdtype)?;
        let graph = build(&gpu, &weights, cfg, text_len, CompileOptions::default())?;
        log::info!("umT5 encoder for {text_len} tokens: {}", graph.report());
        Ok(T5Encoder { gpu, cfg: cfg.clone(), text_len, graph })
    }

    /// Encodes `ids [text_len]` with `mask [text_len]` (1 for the tokens, then 0 for
    /// the padding, as the tokenizer makes them) into `[text_len, dim]`; the padding
    /// rows are zero. Padding keys are left out of every attention.
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
        let ids_f: Vec<f32> = ids.iter().map(|&id| id as f32).collect();
        self.graph.write(&self.gpu, "ids", &ids_f)?;
        self.graph.write(&self.gpu, "ranges", &[0.0, n as f32])?;
        self.graph.run(&self.gpu)?;
        let mut out = self.graph.read(&self.gpu, "context")?;
        // The official wrapper keeps the first n rows; the generator's context is zero past them.
        out[n * self.cfg.dim..].fill(0.0);
        Ok(out)
    }

    /// The compiled graph (reports, profiling, per-step debugging).
    pub fn graph(&mut self) -> &mut Compiled {
        &mut self.graph
    }
}
