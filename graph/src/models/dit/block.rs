//! One DiT block of one chunk call (MODEL.md A.3, MEMORY.md B.2–B.3).
use super::graph::PassNodes;
use super::weights::{Block, Linear};
use super::{BlockState, DitDims};
use crate::builder::Builder;
use crate::error::Result;
use crate::ir::TensorId;
use crate::models::linear::feed_forward;
use crate::ops::{Epilogue, Norm};

/// Slots of the modulation `e0 + blocks.N.modulation` (`[F, 6·D]`).
const SHIFT1: usize = 0;
const SCALE1: usize = 1;
const GATE1: usize = 2;
const SHIFT2: usize = 3;
const SCALE2: usize = 4;
const GATE2: usize = 5;

/// Graph inputs shared by every block.
pub(super) struct Shared {
    /// `e0 [F, 6D]` from `time_projection`.
    pub e0: TensorId,
    pub rope: TensorId,
    /// Key slot ranges of this call (`[R, 2]` u32).
    pub ranges: TensorId,
    /// `[[0, text_len]]`: every context row is a key, padding included (MODEL.md A.1).
    pub ranges_text: TensorId,
    /// `ln ρ [F]` of the call's frames, for B.6's router (None without a B.6 memory).
    pub ln_rho: Option<TensorId>,
    /// The inverse RoPE table of the frames a chunk's first call evicts (None without a memory).
    pub unrope: Option<TensorId>,
}

pub(super) fn linear(g: &mut Builder, name: &str, x: TensorId, l: &Linear, epi: Epilogue) -> Result<TensorId> {
    l.forward(g, name, x, epi)
}

/// q or k: projection then RMSNorm over the full width (before heads are split).
pub(super) fn normed_projection(
    g: &mut Builder,
    (attn, p): (&str, &str),
    x: TensorId,
    l: &Linear,
    norm: &runtime::Tensor,
    eps: f64,
) -> Result<TensorId> {
    let y = linear(g, &format!("{attn}.{p}"), x, l, Epilogue::None)?;
    let w = g.param(&format!("{attn}.norm_{p}.weight"), norm);
    g.norm(&format!("{attn}.norm_{p}"), y, Norm::Rms { weight: w }, eps)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn block(
    g: &mut Builder,
    n: usize,
    w: &Block,
    st: &BlockState,
    x: TensorId,
    dims: &DitDims,
    sh: &Shared,
    nodes: &mut PassNodes,
) -> Result<TensorId> {
    let p = format!("blocks.{n}");
    let (heads, eps, frame_rows) = (dims.heads, dims.eps, dims.tokens_per_frame());
    let scale = 1.0 / (dims.head_dim() as f32).sqrt();
    let modulation = g.param(&format!("{p}.modulation"), &w.modulation);
    let m = g.add(&format!("{p}.e0"), sh.e0, modulation, 1.0)?;
    let cache_k = g.state(&format!("{p}.cache_k"), &st.k);
    let cache_v = g.state(&format!("{p}.cache_v"), &st.v);

    // 1. Self-attention over sinks + window (+ the global memory).
    let a = format!("{p}.self_attn");
    let xn = g.norm(&format!("{p}.norm1"), x, Norm::Modulated { modulation: m, shift: SHIFT1, scale: SCALE1, frame_rows }, eps)?;
    let q = normed_projection(g, (&a, "q"), xn, &w.self_attn.q, &w.self_attn.norm_q, eps)?;
    let k = normed_projection(g, (&a, "k"), xn, &w.self_attn.k, &w.self_attn.norm_k, eps)?;
    let v = linear(g, &format!("{a}.v"), xn, &w.self_attn.v, Epilogue::None)?;
    let grid = (dims.frames, dims.rows, dims.cols);
    let qr = g.rope(&format!("{a}.q_rope"), q, sh.rope, grid, heads)?;
    let kr = g.rope(&format!("{a}.k_rope"), k, sh.rope, grid, heads)?;
    // The memory folds the slots this chunk evicts before its keys overwrite them.
    let memory = match (&w.self_attn.memory, &st.memory, sh.unrope) {
        (Some(mw), Some(ms), Some(unrope)) => {
            let caches = super::memory::Caches { k: cache_k, v: cache_v, unrope };
            Some(super::memory::write(g, &a, xn, q, &caches, mw, ms, dims, nodes)?)
        }
        _ => None,
    };
    nodes.writes.push((g.write_rows(&format!("{a}.cache_k"), kr, cache_k)?, dims.dim));
    nodes.writes.push((g.write_rows(&format!("{a}.cache_v"), v, cache_v)?, dims.dim));
    let mut y = g.attention(&format!("{a}.attn"), qr, cache_k, cache_v, sh.ranges, heads, scale, w.self_attn.k.dtype())?;
    let mem = match (&memory, &w.self_attn.memory, &st.memory) {
        (Some(read), Some(mw), Some(ms)) => Some((read, mw, ms)),
        _ => None,
    };
    if let Some((read, mw, ms)) = &mem {
        y = super::memory::read_before_o(g, &a, y, read, mw, ms)?;
    }
    let mut x = linear(g, &format!("{a}.o"), y, &w.self_attn.o, Epilogue::Gated { residual: x, gate: m, slot: GATE1, frame_rows })?;
    if let Some((read, mw, ms)) = &mem {
        let at = super::memory::AfterO { x, modulation: m, slot: GATE1, ln_rho: sh.ln_rho };
        x = super::memory::read_after_o(g, &a, at, read, mw, ms, dims)?;
    }

    // 2. Cross-attention to the prompt's cached keys/values.
    let c = format!("{p}.cross_attn");
    let xc = match &w.norm3 {
        Some(n3) => {
            let (nw, nb) = (g.param(&format!("{p}.norm3.weight"), &n3.weight), g.param(&format!("{p}.norm3.bias"), &n3.bias));
            g.norm(&format!("{p}.norm3"), x, Norm::Affine { weight: nw, bias: nb }, eps)?
        }
        None => x,
    };
    let cq = normed_projection(g, (&c, "q"), xc, &w.cross_attn.q, &w.cross_attn.norm_q, eps)?;
    let ctx_k = g.state(&format!("{p}.ctx_k"), &st.ctx_k);
    let ctx_v = g.state(&format!("{p}.ctx_v"), &st.ctx_v);
    let cy = g.attention(&format!("{c}.attn"), cq, ctx_k, ctx_v, sh.ranges_text, heads, scale, w.cross_attn.k.dtype())?;
    let x = linear(g, &format!("{c}.o"), cy, &w.cross_attn.o, Epilogue::Residual(x))?;

    // 3. Feed-forward.
    let xn = g.norm(&format!("{p}.norm2"), x, Norm::Modulated { modulation: m, shift: SHIFT2, scale: SCALE2, frame_rows }, eps)?;
    let (up, down) = (format!("{p}.ffn.0"), format!("{p}.ffn.2"));
    let gated = Epilogue::Gated { residual: x, gate: m, slot: GATE2, frame_rows };
    feed_forward(g, [&up, &down], xn, [&w.ffn[0], &w.ffn[1]], Epilogue::Gelu, gated)
}
