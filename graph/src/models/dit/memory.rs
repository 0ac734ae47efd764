//! VideoSSM's global memory inside a block's self-attention (MEMORY.md B.3).
//!
//! Every call writes the chunk's gates (β, decay a) and memory keys k̂ into the same
//! ring slots as its keys/values, so after the clean context pass the caches hold
//! exactly what the spec caches. On a chunk's first call the slots about to be
//! evicted are folded into S by the chunked scan *before* they are overwritten;
//! every call then reads `g ⊙ S q̂` into the attention output.
use super::graph::PassNodes;
use super::weights::Memory;
use super::{DitDims, MemoryState};
use crate::builder::Builder;
use crate::error::Result;
use crate::ir::TensorId;
use crate::ops::Epilogue;

/// What the read needs from the write half.
pub(super) struct ReadInputs {
    /// `q̂ = l2norm(q_h)/√d` (pre-RoPE), `[n, D]`
    qhat: TensorId,
    /// Router gate g, `[n, H]`
    gate: TensorId,
}

/// Gates and memory keys of this call, the scan of the evicted slots (reading the
/// block's value cache `cache_v` before this call overwrites it), and the writes
/// into the memory's slot caches.
#[allow(clippy::too_many_arguments)]
pub(super) fn write(
    g: &mut Builder,
    a: &str,
    xn: TensorId,
    q: TensorId,
    k: TensorId,
    cache_v: TensorId,
    w: &Memory,
    st: &MemoryState,
    dims: &DitDims,
    nodes: &mut PassNodes,
) -> Result<ReadInputs> {
    let m = format!("{a}.memory");
    let raw = super::block::linear(g, &format!("{m}.gates"), xn, &w.gates, Epilogue::None)?;
    let a_log = g.param(&format!("{m}.A_log"), &w.a_log);
    let (beta, decay, gate) = g.memory_gates(&format!("{m}.gates_act"), raw, a_log, dims.heads)?;
    let khat = g.l2norm_heads(&format!("{m}.khat"), k, dims.heads, 1.0)?;
    let qhat = g.l2norm_heads(&format!("{m}.qhat"), q, dims.heads, 1.0 / (dims.head_dim() as f32).sqrt())?;
    let state = g.state(&format!("{m}.state"), &st.state);
    let cache_khat = g.state(&format!("{m}.cache_khat"), &st.khat);
    let cache_beta = g.state(&format!("{m}.cache_beta"), &st.beta);
    let cache_decay = g.state(&format!("{m}.cache_decay"), &st.decay);
    nodes.scans.push(g.ssm_scan(&format!("{m}.scan"), state, cache_khat, cache_v, cache_beta, cache_decay)?);
    nodes.writes.push((g.write_rows(&format!("{m}.cache_khat"), khat, cache_khat)?, dims.dim));
    nodes.writes.push((g.write_rows(&format!("{m}.cache_beta"), beta, cache_beta)?, dims.heads));
    nodes.writes.push((g.write_rows(&format!("{m}.cache_decay"), decay, cache_decay)?, dims.heads));
    Ok(ReadInputs { qhat, gate })
}

/// `y + g ⊙ S q̂` per head, with S as the first call of this chunk left it.
pub(super) fn read(g: &mut Builder, a: &str, y: TensorId, r: ReadInputs, st: &MemoryState) -> Result<TensorId> {
    let state = g.state(&format!("{a}.memory.state_read"), &st.state);
    g.ssm_read(&format!("{a}.memory.read"), y, state, r.qhat, r.gate)
}
