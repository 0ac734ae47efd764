//! The generator's weights on the device, one struct per checkpoint module and
//! fields named after the checkpoint keys (`blocks.N.self_attn.q.weight` …).
pub use crate::models::linear::Linear;
use runtime::{DType, Tensor};

/// `blocks.N.self_attn.memory`: VideoSSM's global memory (MEMORY.md B.3 or B.6).
/// The per-head `[H, D]` gate projections are stacked into one linear at load time
/// (rows β | α, then B.3's router gate) so one matmul produces all gates.
#[derive(Clone)]
pub struct Memory {
    /// `[3H, D]` (B.3) or `[2H, D]` (B.6, β's missing bias stacked as zeros)
    pub gates: Linear,
    /// `A_log [H]`
    pub a_log: Tensor,
    pub form: MemoryForm,
}

/// What differs between the two memory forms besides the gates.
#[derive(Clone)]
pub enum MemoryForm {
    /// B.3: the read is `g ⊙ S q̂` before the output projection.
    GatedLinear,
    /// B.6: the read is normed, gated and routed, and added after the output projection.
    GatedDelta {
        /// `out_gate [D, D]`
        out_gate: Linear,
        /// `norm.weight [d]`, `router.weight [D, 1]`, `router.bias [D]` stacked
        /// `[d + 2D]`: the read kernel's constants in one binding.
        consts: Tensor,
    },
}

/// `self_attn` and `cross_attn`: the same module; only self-attention has the memory.
#[derive(Clone)]
pub struct Attn {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub norm_q: Tensor,
    pub norm_k: Tensor,
    pub memory: Option<Memory>,
}

/// `norm3` with affine when `cross_attn_norm` (weight, bias).
#[derive(Clone)]
pub struct Norm {
    pub weight: Tensor,
    pub bias: Tensor,
}

#[derive(Clone)]
pub struct Block {
    pub self_attn: Attn,
    pub cross_attn: Attn,
    pub norm3: Option<Norm>,
    /// `ffn.0`, `ffn.2`
    pub ffn: [Linear; 2],
    /// `modulation [1, 6, D]`
    pub modulation: Tensor,
}

#[derive(Clone)]
pub struct Head {
    pub head: Linear,
    /// `modulation [1, 2, D]`
    pub modulation: Tensor,
}

#[derive(Clone)]
pub struct DitWeights {
    /// Conv3d with kernel = stride = patch, seen as a linear `[D, C·pt·ph·pw]`.
    pub patch_embedding: Linear,
    /// `text_embedding.0`, `text_embedding.2`
    pub text_embedding: [Linear; 2],
    /// `time_embedding.0`, `time_embedding.2`
    pub time_embedding: [Linear; 2],
    /// `time_projection.1`
    pub time_projection: Linear,
    pub blocks: Vec<Block>,
    pub head: Head,
}

impl DitWeights {
    pub fn has_memory(&self) -> bool {
        self.blocks.iter().all(|b| b.self_attn.memory.is_some())
    }

    /// The dtype of the attention projections (what makes K and V): f32, or the
    /// checkpoint's 16-bit dtype. A model with no blocks reports f32.
    pub fn kv_precision(&self) -> DType {
        self.blocks.first().map_or(DType::F32, |b| b.self_attn.k.dtype())
    }

    /// Whether the memory is B.6's, whose router reads the frame index (`ln_rho`).
    pub fn has_router(&self) -> bool {
        self.blocks.iter().any(|b| matches!(b.self_attn.memory, Some(Memory { form: MemoryForm::GatedDelta { .. }, .. })))
    }
}
