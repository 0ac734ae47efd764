//! The encoder's weights, one struct per checkpoint module, fields named after
//! the checkpoint keys (`blocks.N.attn.q.weight` …). [`HostWeights`] is the validated
//! checkpoint, on the host or still in its file; [`Block`] is one layer on the
//! device, uploaded while a prompt is encoded ([`super::session`]).
use crate::models::linear::Linear;
use runtime::Tensor;
use weights::Checkpoint;

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

/// One layer on the device.
#[derive(Clone)]
pub struct Block {
    /// `norm1.weight [dim]`
    pub norm1: Tensor,
    pub attn: Attn,
    /// `norm2.weight [dim]`
    pub norm2: Tensor,
    pub ffn: Ffn,
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
