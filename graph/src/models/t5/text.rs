//! [`TextEncoder`]: prompt → text embeddings, each prompt encoded once.
use super::{T5Encoder, Tokenizer};
use crate::error::Result;
use std::collections::HashMap;
use std::sync::Arc;

pub struct TextEncoder {
    pub tokenizer: Tokenizer,
    pub encoder: T5Encoder,
    /// Embeddings by cleaned prompt (prompts that clean alike share one).
    cache: HashMap<String, Arc<Vec<f32>>>,
}

impl TextEncoder {
    /// Pairs a tokenizer and an encoder built for the same text length.
    pub fn new(tokenizer: Tokenizer, encoder: T5Encoder) -> Result<TextEncoder> {
        if tokenizer.text_len != encoder.text_len {
            let message = format!("tokenizer pads to {} tokens, the encoder takes {}", tokenizer.text_len, encoder.text_len);
            return Err(crate::GraphError::input("text_len", message));
        }
        Ok(TextEncoder { tokenizer, encoder, cache: HashMap::new() })
    }

    /// `[text_len, dim]` embeddings of `prompt`, padding rows zero (the generator's
    /// `context`). A prompt seen before is served from the cache.
    pub fn embed(&mut self, prompt: &str) -> Result<Arc<Vec<f32>>> {
        let key = super::clean(prompt);
        if let Some(e) = self.cache.get(&key) {
            return Ok(e.clone());
        }
        let enc = self.tokenizer.encode(prompt)?;
        let e = Arc::new(self.encoder.encode(&enc.ids, &enc.mask)?);
        self.cache.insert(key, e.clone());
        Ok(e)
    }

    /// Prompts encoded so far.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}
