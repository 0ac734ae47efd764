//! The encoder's weights, one struct per checkpoint module, fields named after
//! the checkpoint keys (`blocks.N.attn.q.weight` …).
use crate::models::linear::Linear;
use runtime::Tensor;

/// `attn`: bias-free projections `q`, `k`, `v` (`[dim_attn, dim]`) and `o` (`[dim, dim_attn]`).
#[derive(Clone)]
pub struct Attn {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
}

/// `ffn`: `fc2(fc1(x) ⊙ GELU(gate.0(x)))`.
#[derive(Clone)]
pub struct Ffn {
    /// `gate.0`
    pub gate: Linear,
    pub fc1: Linear,
    pub fc2: Linear,
}

/// `pos_embedding.embedding.weight [num_buckets, heads]`, kept on the host: the
/// graph binds its expansion for one text length ([`super::relative_bias`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RelativeEmbedding {
    pub embedding: Vec<f32>,
}

#[derive(Clone)]
pub struct Block {
    /// `norm1.weight [dim]`
    pub norm1: Tensor,
    pub attn: Attn,
    /// `norm2.weight [dim]`
    pub norm2: Tensor,
    pub ffn: Ffn,
    /// umT5 (`shared_pos = false`): each layer's own table.
    pub pos_embedding: Option<RelativeEmbedding>,
}

#[derive(Clone)]
pub struct T5Weights {
    /// `token_embedding.weight [vocab, dim]` as slices `(rows, first id)` that each fit
    /// one storage binding (umT5-XXL's table is 2 GB in bf16).
    pub token_embedding: Vec<(Tensor, usize)>,
    /// T5 (`shared_pos = true`): one table for every layer.
    pub pos_embedding: Option<RelativeEmbedding>,
    pub blocks: Vec<Block>,
    /// `norm.weight [dim]`
    pub norm: Tensor,
}

impl T5Weights {
    /// The relative-position table layer `n` uses.
    pub fn pos_table(&self, n: usize) -> Option<&RelativeEmbedding> {
        self.blocks[n].pos_embedding.as_ref().or(self.pos_embedding.as_ref())
    }
}
