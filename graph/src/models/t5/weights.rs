//! The encoder's weights, named after the checkpoint keys (`blocks.N.attn.q.weight` …).
//! [`HostWeights`] is the validated checkpoint, on the host or still in its file;
//! [`LayerParams`] are one layer's small tensors on the device while a prompt is
//! encoded, beside one of its linears at a time ([`super::session`]).
use runtime::Tensor;
use weights::Checkpoint;

/// `pos_embedding.embedding.weight [num_buckets, heads]`, kept on the host: the
/// graph binds its expansion for one text length ([`super::relative_bias`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RelativeEmbedding {
    pub embedding: Vec<f32>,
}

/// One layer's small tensors on the device, for one prompt's length.
pub struct LayerParams {
    /// `norm1.weight [dim]`
    pub norm1: Tensor,
    /// `norm2.weight [dim]`
    pub norm2: Tensor,
    /// The relative-position bias `[heads, 2L − 1]` for `L` tokens ([`super::relative_bias`]).
    pub bias: Tensor,
    /// The keys attention reads, `[[0, L]]`: all the prompt's tokens.
    pub keys: Tensor,
    /// After the last layer, the final norm's `norm.weight [dim]`.
    pub last: Option<Tensor>,
}

pub struct HostWeights {
    /// The validated checkpoint; layers are read from it as they are uploaded, and
    /// only a prompt's rows of `token_embedding.weight` (2 GB in umT5-XXL's bf16).
    pub ck: Checkpoint,
    /// The relative-position table of each layer (umT5), or of all (T5: `shared_pos`).
    pub pos_tables: Vec<RelativeEmbedding>,
    /// `norm.weight [dim]`
    pub norm: Vec<f32>,
}
