//! The encoder's weights, one struct per checkpoint module, fields named after
//! the checkpoint keys (`blocks.N.attn.q.weight` …). [`HostWeights`] is the checkpoint
//! as validated, kept on the host; [`Block`] is one layer on the device, uploaded
//! while a prompt is encoded ([`super::session`]).
use crate::models::linear::Linear;
use runtime::Tensor;
use weights::HostTensor;

/// `attn`: bias-free projections `q`, `k`, `v` (`[dim_attn, dim]`) and `o` (`[dim, dim_attn]`).
#[derive(Clone)]
pub struct Attn<L> {
    pub q: L,
    pub k: L,
    pub v: L,
    pub o: L,
}

/// `ffn`: `fc2(fc1(x) ⊙ GELU(gate.0(x)))`.
#[derive(Clone)]
pub struct Ffn<L> {
    /// `gate.0`
    pub gate: L,
    pub fc1: L,
    pub fc2: L,
}

/// `pos_embedding.embedding.weight [num_buckets, heads]`, kept on the host: the
/// graph binds its expansion for one text length ([`super::relative_bias`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RelativeEmbedding {
    pub embedding: Vec<f32>,
}

/// One layer: its linears `L` are checkpoint tensors on the host ([`HostBlock`]) or
/// uploaded [`Linear`]s ([`Block`]), its norm gains `N` likewise.
#[derive(Clone)]
pub struct Layer<L, N> {
    /// `norm1.weight [dim]`
    pub norm1: N,
    pub attn: Attn<L>,
    /// `norm2.weight [dim]`
    pub norm2: N,
    pub ffn: Ffn<L>,
}

pub type HostBlock = Layer<HostTensor, Vec<f32>>;
pub type Block = Layer<Linear, Tensor>;

pub struct HostWeights {
    /// `token_embedding.weight [vocab, dim]`, looked up on the host: only a prompt's
    /// rows reach the device (umT5-XXL's table is 2 GB in bf16).
    pub token_embedding: HostTensor,
    /// T5 (`shared_pos = true`): one table for every layer; umT5: one per layer.
    pub pos_embedding: Option<RelativeEmbedding>,
    pub blocks: Vec<(HostBlock, Option<RelativeEmbedding>)>,
    /// `norm.weight [dim]`
    pub norm: Vec<f32>,
}

impl HostWeights {
    /// The relative-position table layer `n` uses.
    pub fn pos_table(&self, n: usize) -> Option<&RelativeEmbedding> {
        self.blocks[n].1.as_ref().or(self.pos_embedding.as_ref())
    }
}
