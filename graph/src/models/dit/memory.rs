//! VideoSSM's global memory inside a block's self-attention (MEMORY.md B.3, B.6).
//!
//! Every call writes the chunk's gates (β, decay a) into the same ring slots as its
//! keys/values, so after the clean context pass the caches hold what the spec caches.
//! The memory keys k̂ (the l2-normed pre-RoPE keys) are not cached: RoPE is a rotation,
//! so on a chunk's first call k̂ of the tokens about to be evicted is recovered from
//! their cached keys (rotated back, normed) into a chunk-sized scratch. At full size
//! that is 1.2 GiB less session state than a k̂ cache as large as the window. Those
//! tokens are then folded into S *before* their slots are overwritten: by B.3's gated
//! linear scan or by B.6's gated delta rule. Every call then reads S with q̂: B.3 adds
//! `g ⊙ S q̂` to the attention output before `o`, B.6 adds its normed, gated and
//! routed read to the residual stream after `o`.
use super::graph::PassNodes;
use super::weights::{Memory, MemoryForm};
use super::{DitDims, MemoryState};
use crate::builder::Builder;
use crate::error::{GraphError, Result};
use crate::ir::TensorId;
use crate::ops::Epilogue;

/// What the read needs from the write half.
pub(super) struct ReadInputs {
    /// `q̂ = l2norm(q_h)/√d` (pre-RoPE), `[n, D]`
    qhat: TensorId,
    /// B.3's router gate g `[n, H]`, or B.6's `out_gate(x)` `[n, D]`
    gate: TensorId,
}

/// The block's caches the memory reads, before this call overwrites them.
pub(super) struct Caches {
    /// Post-RoPE keys `[slots, D]`.
    pub k: TensorId,
    pub v: TensorId,
    /// The inverse RoPE table of the evicted frames.
    pub unrope: TensorId,
}

/// Gates of this call, the scan of the evicted slots (k̂ recovered from their cached
/// keys, v read from the value cache), and the writes into the memory's gate caches.
#[allow(clippy::too_many_arguments)]
pub(super) fn write(
    g: &mut Builder,
    a: &str,
    xn: TensorId,
    q: TensorId,
    cache: &Caches,
    w: &Memory,
    st: &MemoryState,
    dims: &DitDims,
    nodes: &mut PassNodes,
) -> Result<ReadInputs> {
    let m = format!("{a}.memory");
    let raw = super::block::linear(g, &format!("{m}.gates"), xn, &w.gates, Epilogue::None)?;
    let a_log = g.param(&format!("{m}.A_log"), &w.a_log);
    let b3 = matches!(w.form, MemoryForm::GatedLinear);
    let gates = g.memory_gates(&format!("{m}.gates_act"), raw, a_log, dims.heads, b3)?;
    let qhat = g.l2norm_heads(&format!("{m}.qhat"), q, dims.heads, 1.0 / (dims.head_dim() as f32).sqrt())?;
    // A chunk evicts at most its own token count (the window holds a chunk), whole
    // frames, so the evicted keys fit the chunk's grid. The rotation and norm run over
    // the whole scratch on every call (the graph is static): an element-wise pass over
    // one chunk's keys, small next to the attention over the window.
    let (evicted, reads) = g.read_rows(&format!("{m}.evicted_k"), cache.k, dims.tokens())?;
    nodes.reads.push(reads);
    let unrotated = g.rope(&format!("{m}.unrope"), evicted, cache.unrope, (dims.frames, dims.rows, dims.cols), dims.heads)?;
    let khat = g.l2norm_heads(&format!("{m}.khat"), unrotated, dims.heads, 1.0)?;
    let state = g.state(&format!("{m}.state"), &st.state);
    let cache_beta = g.state(&format!("{m}.cache_beta"), &st.beta);
    let cache_decay = g.state(&format!("{m}.cache_decay"), &st.decay);
    let scan = format!("{m}.scan");
    let (gate, scans) = match (&w.form, gates.router) {
        (MemoryForm::GatedDelta { out_gate, .. }, _) => {
            let scans = g.ssm_delta_scan(&scan, state, khat, cache.v, cache_beta, cache_decay, dims.tokens())?;
            (out_gate.forward(g, &format!("{m}.out_gate"), xn, Epilogue::None)?, scans)
        }
        (MemoryForm::GatedLinear, Some(router)) => (router, vec![g.ssm_scan(&scan, state, khat, cache.v, cache_beta, cache_decay)?]),
        (MemoryForm::GatedLinear, None) => unreachable!("memory_gates makes B.3's router gate when asked"),
    };
    nodes.scans.extend(scans);
    nodes.writes.push((g.write_rows(&format!("{m}.cache_beta"), gates.beta, cache_beta)?, dims.heads));
    nodes.writes.push((g.write_rows(&format!("{m}.cache_decay"), gates.decay, cache_decay)?, dims.heads));
    Ok(ReadInputs { qhat, gate })
}

/// B.3, on the attention output `y` before `o`: `y + g ⊙ S q̂` per head, with S as
/// the first call of this chunk left it. B.6 reads after `o` ([`read_after_o`]).
pub(super) fn read_before_o(g: &mut Builder, a: &str, y: TensorId, r: &ReadInputs, w: &Memory, st: &MemoryState) -> Result<TensorId> {
    if !matches!(w.form, MemoryForm::GatedLinear) {
        return Ok(y);
    }
    let state = g.state(&format!("{a}.memory.state_read"), &st.state);
    g.ssm_read(&format!("{a}.memory.read"), y, state, r.qhat, r.gate)
}

/// Where B.6's read lands: the residual stream after the gated `o` projection.
pub(super) struct AfterO {
    /// `x + m_gate ⊙ o(y)`
    pub x: TensorId,
    /// The block's modulation `[F, 6D]` and its gate slot.
    pub modulation: TensorId,
    pub slot: usize,
    /// `ln ρ [F]` of this call's frames.
    pub ln_rho: Option<TensorId>,
}

/// B.6 (Eq. 8–10): `x + m_gate ⊙ γ ⊙ Swish(g ⊙ RMSNorm_d(S q̂))`, which is the
/// block's gated residual of `o(y) + γ ⊙ H_global`. B.3 returns `at.x`.
pub(super) fn read_after_o(
    g: &mut Builder,
    a: &str,
    at: AfterO,
    r: &ReadInputs,
    w: &Memory,
    st: &MemoryState,
    dims: &DitDims,
) -> Result<TensorId> {
    let MemoryForm::GatedDelta { consts, .. } = &w.form else {
        return Ok(at.x);
    };
    let name = format!("{a}.memory.read");
    let ln_rho =
        at.ln_rho.ok_or_else(|| GraphError::Shape { op: name.clone(), message: "the graph has no ln_rho input for the router".into() })?;
    let state = g.state(&format!("{a}.memory.state_read"), &st.state);
    let consts = g.param(&format!("{a}.memory.norm_router"), consts);
    let frame_rows = dims.tokens_per_frame();
    g.ssm_read_delta(&name, at.x, state, r.qhat, r.gate, consts, ln_rho, at.modulation, at.slot, frame_rows, dims.eps)
}
