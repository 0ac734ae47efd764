//! The prompt graph and the chunk-pass graph of the generator.
use super::block::{block, linear, normed_projection, Shared};
use super::weights::DitWeights;
use super::{BlockState, DitDims};
use crate::builder::Builder;
use crate::error::Result;
use crate::executor::{CompileOptions, Compiled};
use crate::ops::{Epilogue, Norm};
use runtime::kernels::copy;
use runtime::{DType, Gpu};

/// Key ranges a chunk call attends to: sinks and at most two ring pieces.
pub const MAX_RANGES: usize = 3;

/// Node indices whose params change between calls.
#[derive(Default)]
pub struct PassNodes {
    /// Row writes into slot caches, with the row width.
    pub writes: Vec<([usize; 2], usize)>,
    /// SSM scan nodes over evicted slots (MEMORY.md B.3, B.6), one or two per
    /// block, all taking the same [`runtime::kernels::ssm_scan::Params::scan`].
    pub scans: Vec<usize>,
    /// Row gathers of the evicted slots' keys, one pair per block (row width `D`).
    pub reads: Vec<[usize; 2]>,
}

pub struct PassGraph {
    pub compiled: Compiled,
    pub nodes: PassNodes,
}

/// text embeddings `[text_len, text_dim]` → every block's cross-attention k/v, written into the session state.
pub fn build_prompt(gpu: &Gpu, w: &DitWeights, states: &[BlockState], dims: &DitDims, opts: CompileOptions) -> Result<Compiled> {
    let mut g = Builder::for_device(gpu, &opts);
    let ctx = g.input("context", &[dims.text_len, dims.text_dim], DType::F32);
    let h = linear(&mut g, "text_embedding.0", ctx, &w.text_embedding[0], Epilogue::Gelu)?;
    let c = linear(&mut g, "text_embedding.2", h, &w.text_embedding[1], Epilogue::None)?;
    for (n, (b, st)) in w.blocks.iter().zip(states).enumerate() {
        let a = format!("blocks.{n}.cross_attn");
        let k = normed_projection(&mut g, (&a, "k"), c, &b.cross_attn.k, &b.cross_attn.norm_k, dims.eps)?;
        let v = linear(&mut g, &format!("{a}.v"), c, &b.cross_attn.v, Epilogue::None)?;
        let all = copy::Params::rows(dims.text_len, dims.dim, 0, 0);
        let ck = g.state(&format!("blocks.{n}.ctx_k"), &st.ctx_k);
        let cv = g.state(&format!("blocks.{n}.ctx_v"), &st.ctx_v);
        g.copy_into(&format!("{a}.ctx_k"), k, ck, &all)?;
        g.copy_into(&format!("{a}.ctx_v"), v, cv, &all)?;
    }
    g.compile(gpu, opts)
}

/// One model call on a chunk: inputs `x [F, C, h, w]`, `time [F, freq_dim]` (the
/// sinusoidal embedding), `rope` (angle table of the chunk's frames), `ranges`
/// (`[MAX_RANGES, 2]` key slot ranges), with a memory `unrope` (the inverse table of
/// the frames the chunk evicts) and with a B.6 memory `ln_rho [F]` (the router's
/// input per frame, [`DitDims::ln_rho`]); output `flow [F, C, h, w]`.
pub fn build_pass(gpu: &Gpu, w: &DitWeights, states: &[BlockState], dims: &DitDims, opts: CompileOptions) -> Result<PassGraph> {
    let (g, nodes) = pass_graph(Builder::for_device(gpu, &opts), w, states, dims)?;
    Ok(PassGraph { compiled: g.compile(gpu, opts)?, nodes })
}

/// The ops of [`build_pass`] appended to `g`, uncompiled: sizes and labels can be
/// read from it without allocating anything (the planner tests do).
pub fn pass_graph(mut g: Builder, w: &DitWeights, states: &[BlockState], dims: &DitDims) -> Result<(Builder, PassNodes)> {
    let (f, c, hh, ww, d) = (dims.frames, dims.channels, dims.height, dims.width, dims.dim);
    let n = dims.tokens();
    let x = g.input("x", &[f, c, hh, ww], DType::F32);
    let time = g.input("time", &[f, dims.freq_dim], DType::F32);
    let table = runtime::kernels::rope::table(0, f, dims.rows, dims.cols, dims.head_dim());
    let rope = g.input("rope", &[table.len()], DType::F32);
    let ranges = g.input("ranges", &[MAX_RANGES, 2], DType::U32);
    let ranges_text = g.input("ranges_text", &[1, 2], DType::U32);
    let ln_rho = w.has_router().then(|| g.input("ln_rho", &[f], DType::F32));
    let unrope = w.has_memory().then(|| g.input("unrope", &[table.len()], DType::F32));

    // Time conditioning per frame: e [F, D] and e0 [F, 6D].
    let t = linear(&mut g, "time_embedding.0", time, &w.time_embedding[0], Epilogue::Silu)?;
    let e = linear(&mut g, "time_embedding.2", t, &w.time_embedding[1], Epilogue::None)?;
    let e_act = g.silu("time_projection.0", e)?;
    let e0 = linear(&mut g, "time_projection.1", e_act, &w.time_projection, Epilogue::None)?;

    let tokens = g.copy_new("patchify", x, &[n, c * 4], &copy::Params::patchify(f, c, hh, ww))?;
    let mut h = linear(&mut g, "patch_embedding", tokens, &w.patch_embedding, Epilogue::None)?;
    let shared = Shared { e0, rope, ranges, ranges_text, ln_rho, unrope };
    let mut nodes = PassNodes::default();
    for (i, (b, st)) in w.blocks.iter().zip(states).enumerate() {
        h = block(&mut g, i, b, st, h, dims, &shared, &mut nodes)?;
    }

    // Head: (shift, scale) = head.modulation + e, both slots seeing the same e.
    let e2 = g.copy_new("head.e", e, &[f, 2 * d], &copy::Params::new(&[f, 2, d], 0, &[d, 0, 1], 0, &[2 * d, d, 1]))?;
    let hm = g.param("head.modulation", &w.head.modulation);
    let m = g.add("head.mod", e2, hm, 1.0)?;
    let hn =
        g.norm("head.norm", h, Norm::Modulated { modulation: m, shift: 0, scale: 1, frame_rows: dims.tokens_per_frame() }, dims.eps)?;
    let out = linear(&mut g, "head.head", hn, &w.head.head, Epilogue::None)?;
    let flow = g.copy_new("unpatchify", out, &[f, dims.out_channels, hh, ww], &copy::Params::unpatchify(f, dims.out_channels, hh, ww))?;
    g.output(flow, "flow");
    Ok((g, nodes))
}
