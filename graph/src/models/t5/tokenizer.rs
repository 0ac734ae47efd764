//! The umT5 tokenizer: Wan's `tokenizer.json` (a SentencePiece Unigram model behind
//! a Metaspace pre-tokenizer) through the `tokenizers` crate, with the official
//! wrapper's behaviour around it: whitespace cleaning ([`super::clean`]), `</s>`
//! appended, truncation to `text_len` (the EOS kept last) and `<pad>` padding.
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A tokenizer.json beyond this is not a tokenizer (umT5's is about 16 MB).
const MAX_FILE: u64 = 256 << 20;

#[derive(Debug, Error)]
pub enum TokenizerError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: {size} bytes is above the {MAX_FILE}-byte limit for a tokenizer.json")]
    TooLarge { path: PathBuf, size: u64 },

    #[error("{path}: not a valid tokenizer.json: {message}")]
    Malformed { path: PathBuf, message: String },

    #[error("{path}: the vocabulary has no {role} token {token:?} (umT5's tokenizer.json has \"</s>\" and \"<pad>\")")]
    MissingToken { path: PathBuf, role: &'static str, token: &'static str },

    #[error("{path}: text_len must be at least 1 (room for the EOS token)")]
    TextLen { path: PathBuf },

    #[error("{path}: cannot tokenize {prompt:?}: {message}")]
    Encode { path: PathBuf, prompt: String, message: String },
}

/// One prompt as the encoder takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// `[text_len]` token ids: the prompt's tokens, `</s>`, then `<pad>`.
    pub ids: Vec<u32>,
    /// `[text_len]`: 1 for the tokens and the EOS, 0 for the padding.
    pub mask: Vec<u32>,
    /// Tokens including the EOS (the mask's ones).
    pub len: usize,
}

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    pub eos: u32,
    pub pad: u32,
    pub text_len: usize,
}

impl Tokenizer {
    /// Loads `tokenizer.json` for prompts of `text_len` tokens (Wan: 512).
    pub fn from_file(path: impl AsRef<Path>, text_len: usize) -> Result<Tokenizer, TokenizerError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| TokenizerError::Io { path: path.clone(), source };
        let size = std::fs::metadata(&path).map_err(io)?.len();
        if size > MAX_FILE {
            return Err(TokenizerError::TooLarge { path, size });
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        let mut inner = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| TokenizerError::Malformed { path: path.clone(), message: e.to_string() })?;
        if text_len == 0 {
            return Err(TokenizerError::TextLen { path });
        }
        // Truncation and padding are ours (below), whatever the file asks for.
        inner.with_padding(None);
        inner.with_truncation(None).map_err(|e| TokenizerError::Malformed { path: path.clone(), message: e.to_string() })?;
        let id = |role, token| inner.token_to_id(token).ok_or(TokenizerError::MissingToken { path: path.clone(), role, token });
        let (eos, pad) = (id("EOS", "</s>")?, id("padding", "<pad>")?);
        Ok(Tokenizer { inner, path, eos, pad, text_len })
    }

    /// Cleans and tokenizes `prompt`: at most `text_len − 1` of its tokens, `</s>`, padding.
    pub fn encode(&self, prompt: &str) -> Result<Encoding, TokenizerError> {
        let cleaned = super::clean(prompt);
        let enc = self.inner.encode(cleaned.as_str(), false).map_err(|e| TokenizerError::Encode {
            path: self.path.clone(),
            prompt: prompt.into(),
            message: e.to_string(),
        })?;
        let mut ids: Vec<u32> = enc.get_ids().iter().copied().take(self.text_len - 1).collect();
        ids.push(self.eos);
        let len = ids.len();
        ids.resize(self.text_len, self.pad);
        let mask = (0..self.text_len).map(|i| (i < len) as u32).collect();
        Ok(Encoding { ids, mask, len })
    }

    /// The underlying `tokenizers` tokenizer (decoding, vocabulary look-ups).
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}
