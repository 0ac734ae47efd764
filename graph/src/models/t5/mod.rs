//! The umT5 text encoder of Wan2.1 (../shared/spec/TEXT_VAE.md C.1) and its tokenizer.
//!
//! A prompt is encoded layer by layer over its valid tokens only: the token
//! embeddings are looked up on the host, then each layer (T5 RMS norm → unscaled
//! self-attention with a relative-position bias → residual, RMS norm → gated-GELU
//! FFN → residual; the final norm after the last) runs as one piece per linear
//! (`graph.rs`), each uploaded, compiled for the prompt's length, run and released
//! (`session.rs`). The per-layer bias depends only on the weights and the length, so
//! it is expanded on the host ([`relative_bias`]) and bound as a weight.
mod graph;
pub mod load;
pub mod session;
pub mod text;
pub mod tokenizer;
pub mod weights;

mod clean;

pub use clean::clean;
pub use session::{EncodeStats, T5Encoder};
pub use text::TextEncoder;
pub use tokenizer::{Encoding, Tokenizer, TokenizerError};

/// `T5LayerNorm`'s epsilon.
pub const EPS: f64 = 1e-6;

/// Relative distances beyond this share the last bucket of each direction.
pub const MAX_DISTANCE: usize = 128;

/// The bidirectional bucket of a key `rel = j − i` positions after its query
/// (negative: before). Half the buckets per direction (the later half for keys
/// after the query); in each half, distances below a quarter of the buckets are
/// exact and longer ones are spaced logarithmically up to [`MAX_DISTANCE`].
/// Evaluated in f32 like the official code, so the floor lands where it does.
pub fn bucket(rel: i64, num_buckets: usize) -> usize {
    let half = num_buckets / 2;
    let exact = half / 2;
    let base = if rel > 0 { half } else { 0 };
    let a = rel.unsigned_abs() as usize;
    if a < exact {
        return base + a;
    }
    let log_ratio = ((MAX_DISTANCE as f64) / (exact as f64)).ln() as f32;
    let far = ((a as f32 / exact as f32).ln() / log_ratio * (half - exact) as f32) as usize;
    base + (exact + far).min(half - 1)
}

/// One layer's bias table `[heads, 2L − 1]` for `L` tokens: entry `r + L − 1` of
/// head `h` is the learned `embedding [num_buckets, heads]` at the bucket of distance `r`.
pub fn relative_bias(embedding: &[f32], num_buckets: usize, heads: usize, len: usize) -> Vec<f32> {
    let span = 2 * len - 1;
    let mut table = vec![0.0; heads * span];
    for i in 0..span {
        let b = bucket(i as i64 - (len as i64 - 1), num_buckets);
        for h in 0..heads {
            table[h * span + i] = embedding[b * heads + h];
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_t5_layout() {
        // 32 buckets: 0..16 for keys at or before the query, 16..32 after it.
        assert_eq!(bucket(0, 32), 0);
        assert_eq!(bucket(-7, 32), 7);
        assert_eq!(bucket(7, 32), 23);
        assert_eq!(bucket(-8, 32), 8);
        // 8·16^(2/8) = 16 sits exactly on a boundary: bucket 8 + 2.
        assert_eq!(bucket(-15, 32), 9);
        assert_eq!(bucket(-16, 32), 10);
        assert_eq!(bucket(127, 32), 16 + 15);
        assert_eq!(bucket(-128, 32), 15);
        assert_eq!(bucket(-100_000, 32), 15);
        // Monotone in distance within each direction.
        for n in [8usize, 16, 32] {
            for r in 2..600i64 {
                assert!(bucket(r, n) >= bucket(r - 1, n));
                assert!(bucket(-r, n) >= bucket(1 - r, n));
            }
        }
    }

    #[test]
    fn table_index_is_key_minus_query() {
        let (buckets, heads, len) = (8, 2, 5);
        let emb: Vec<f32> = (0..buckets * heads).map(|v| v as f32).collect();
        let t = relative_bias(&emb, buckets, heads, len);
        for h in 0..heads {
            for r in -(len as i64 - 1)..len as i64 {
                assert_eq!(t[h * (2 * len - 1) + (r + len as i64 - 1) as usize], emb[bucket(r, buckets) * heads + h]);
            }
        }
    }
}
