//! A streaming decode session: compiled graphs per chunk length, the causal caches
//! carried from chunk to chunk, and the adapter limits that bound a chunk.
use super::bands::{band_name, join_planes};
use super::graph::Build;
use super::weights::VaeWeights;
use super::{load, Caches};
use crate::builder::Builder;
use crate::error::{GraphError, Result};
use crate::executor::{CompileOptions, Compiled};
use crate::ir::{Graph, Kind};
use crate::plan::Plan;
use runtime::{DType, Gpu, RuntimeError};
use std::collections::HashMap;
use std::sync::Arc;
use weights::snapshot::{check_tensors, StateTensor};
use weights::{Checkpoint, VaeConfig, VaeUpsample};

/// What one chunk costs on the device, from the planned (uncompiled) graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaeMemory {
    /// Activation buffers after lifetime-based reuse (inputs/outputs included).
    pub activation_bytes: u64,
    /// Of those, the buffers taken from the device's shared pool (`runtime::pool`):
    /// what [`VaeOptions::activation_budget`] bounds.
    pub pooled_bytes: u64,
    /// The largest single activation: what must fit one storage binding.
    pub largest_tensor_bytes: u64,
    /// The per-conv frame caches (shared by every chunk length).
    pub cache_bytes: u64,
    pub weight_bytes: u64,
    /// Row bands of the activations past the last attention.
    pub bands: usize,
}

/// How a [`VaeDecoder`] is built.
#[derive(Clone, Copy, Debug, Default)]
pub struct VaeOptions {
    pub compile: CompileOptions,
    /// Bytes of shared activation buffers a one-latent-frame chunk may plan: more row
    /// bands are taken until it fits. `None`: the fewest bands the adapter's limits allow.
    pub activation_budget: Option<u64>,
}

pub struct VaeDecoder {
    gpu: Arc<Gpu>,
    weights: VaeWeights,
    /// Latent size `(z, h, w)` the graphs are built for.
    latent: (usize, usize, usize),
    /// Video frames per latent frame after the first (2^temporal stages).
    temporal: usize,
    /// Pixels per latent pixel along each axis.
    spatial: usize,
    caches: Caches,
    /// Compiled graphs by (first chunk, latent frames), with the pieces their video is output in.
    graphs: HashMap<(bool, usize), (Compiled, usize)>,
    /// Whether the video's first latent frame has been decoded.
    started: bool,
    /// Row bands that make one latent frame's tensors fit the adapter's bindings.
    bands: usize,
    /// Latent frames per graph call that fit the adapter.
    max_chunk: usize,
    opts: CompileOptions,
    budget: Option<u64>,
    /// Shared activation buffers held for graphs not compiled yet ([`VaeDecoder::reserve`]).
    reserved: Vec<Arc<wgpu::Buffer>>,
}

impl VaeDecoder {
    /// Uploads the decoder of `ck` (validated against `cfg`) for latents of `latent_h × latent_w`.
    pub fn load(gpu: Arc<Gpu>, ck: &Checkpoint, cfg: &VaeConfig, wdtype: DType, latent_h: usize, latent_w: usize) -> Result<VaeDecoder> {
        let weights = load::load(&gpu, cfg, ck, wdtype)?;
        VaeDecoder::new(gpu, weights, cfg, latent_h, latent_w, VaeOptions::default())
    }

    pub fn new(gpu: Arc<Gpu>, weights: VaeWeights, cfg: &VaeConfig, h: usize, w: usize, opts: VaeOptions) -> Result<VaeDecoder> {
        if h == 0 || w == 0 {
            return Err(GraphError::input(
                "latent size",
                format!("{h}×{w}, expected at least 1×1: pass the latent height and width (video size / 8)"),
            ));
        }
        let cache_dtype = crate::models::cache_dtype(&gpu.caps, weights.conv2.weight.dtype, &opts.compile);
        let ups = cfg.decoder_upsamples();
        let temporal = 1 << ups.iter().filter(|u| matches!(u, VaeUpsample::Resample { temporal: true, .. })).count();
        let spatial = 1 << ups.iter().filter(|u| matches!(u, VaeUpsample::Resample { .. })).count();
        let mut vae = VaeDecoder {
            gpu,
            weights,
            latent: (cfg.z_dim, h, w),
            temporal,
            spatial,
            caches: Caches::new(cache_dtype),
            graphs: HashMap::new(),
            started: false,
            bands: 1,
            max_chunk: 1,
            opts: opts.compile,
            budget: opts.activation_budget,
            reserved: Vec::new(),
        };
        (vae.bands, vae.max_chunk) = vae.fit()?;
        Ok(vae)
    }

    /// Video frames that `frames` more latent frames decode to from here.
    pub fn output_frames(&self, frames: usize) -> usize {
        match (frames, self.started) {
            (0, _) => 0,
            (n, true) => n * self.temporal,
            (n, false) => 1 + (n - 1) * self.temporal,
        }
    }

    /// `(height, width)` of the video frames.
    pub fn video_size(&self) -> (usize, usize) {
        (self.latent.1 * self.spatial, self.latent.2 * self.spatial)
    }

    /// Decodes the next `frames` latent frames `[frames, z, h, w]` (the generator's
    /// normalised scale) into video frames `[n, 3, H, W]` in [−1, 1]: one for the
    /// video's first latent frame, `temporal` for every later one.
    pub fn decode(&mut self, latents: &[f32], frames: usize) -> Result<Vec<f32>> {
        let (z, h, w) = self.latent;
        let per_frame = z * h * w;
        let shape_err = |hint: &str| {
            GraphError::input("latents", format!("has {} values, expected {frames} frames × [{z}, {h}, {w}]: {hint}", latents.len()))
        };
        if frames == 0 {
            return Err(shape_err("decode at least one latent frame"));
        }
        if frames.checked_mul(per_frame) != Some(latents.len()) {
            return Err(shape_err("the slice must hold frames × z_dim × latent_h × latent_w values"));
        }
        let mut out = Vec::with_capacity(self.output_frames(frames) * 3 * h * w * self.spatial * self.spatial);
        let mut start = 0;
        for (first, n) in self.calls(self.started, frames) {
            out.extend(self.run(first, n, &latents[start * per_frame..(start + n) * per_frame])?);
            self.started = true;
            start += n;
        }
        Ok(out)
    }

    /// The graph calls `(first, latent frames)` that decode `frames` latent frames,
    /// `started` or not: the first latent frame runs alone (its temporal upsamples pass
    /// it through), the rest in calls of at most [`VaeDecoder::chunk_limit`].
    fn calls(&self, started: bool, frames: usize) -> Vec<(bool, usize)> {
        let mut calls = Vec::new();
        let mut start = 0;
        while start < frames {
            let first = !started && start == 0;
            let n = if first { 1 } else { self.max_chunk.min(frames - start) };
            calls.push((first, n));
            start += n;
        }
        calls
    }

    /// Compiles every graph a video in chunks of `frames` latent frames runs, so that
    /// what the device holds can be read before the first chunk.
    pub fn prepare(&mut self, frames: usize) -> Result<()> {
        let calls = [self.calls(false, frames), self.calls(true, frames)].concat();
        for (first, n) in calls {
            self.compiled(first, n)?;
        }
        Ok(())
    }

    /// [`VaeDecoder::decode`] with the latents' shape `[F, z, h, w]` checked dimension by dimension.
    pub fn decode_shaped(&mut self, latents: &[f32], shape: &[usize]) -> Result<Vec<f32>> {
        let (z, h, w) = self.latent;
        let err = |hint: String| GraphError::input("latents", format!("has shape {shape:?}, expected [frames, {z}, {h}, {w}]: {hint}"));
        match *shape {
            [_, c, _, _] if c != z => Err(err(format!("the VAE takes {z} latent channels, got {c}"))),
            [_, _, lh, lw] if (lh, lw) != (h, w) => {
                Err(err(format!("the decoder was built for {h}×{w} latents: load another VaeDecoder for {lh}×{lw}")))
            }
            [f, _, _, _] => self.decode(latents, f),
            _ => Err(err("latents are 4-D [frames, channels, height, width]".into())),
        }
    }

    /// The most latent frames one graph call takes on this adapter (longer decodes are split).
    pub fn chunk_limit(&self) -> usize {
        self.max_chunk
    }

    /// How many graphs have been compiled (one per chunk length seen, plus the first frame's).
    pub fn compiled_graphs(&self) -> usize {
        self.graphs.len()
    }

    /// Starts a new video: caches zeroed, the next latent frame is the first again.
    pub fn reset(&mut self) -> Result<()> {
        self.caches.reset(&self.gpu)?;
        self.started = false;
        Ok(())
    }

    /// The causal caches by name, downloaded (between chunks), for a snapshot.
    pub fn caches(&self) -> Result<Vec<StateTensor>> {
        self.caches.tensors.iter().map(|(k, t)| Ok((k.clone(), t.shape.clone(), self.gpu.download(t)?))).collect()
    }

    /// Continues a video from `caches` ([`VaeDecoder::caches`] of a decoder of the same
    /// model and size, after at least one chunk): the next chunk decodes to the same
    /// pixels as it would have there. An error names the cache that differs.
    pub fn restore_caches(&mut self, caches: &[StateTensor]) -> Result<()> {
        // The caches exist once a chunk's graph is built (no compile needed).
        self.builder(false, 1)?;
        let mine = &self.caches.tensors;
        check_tensors("VAE cache", caches, mine.iter().map(|(n, t)| (n.as_str(), t.shape.as_slice()))).map_err(GraphError::Session)?;
        for (t, (_, _, data)) in mine.values().zip(caches) {
            self.gpu.write(t, data)?;
        }
        self.started = true;
        Ok(())
    }

    /// A chunk's graph with its caches, and the pieces its video is output in.
    fn builder(&mut self, first: bool, frames: usize) -> Result<(Builder, usize)> {
        let cache_dtype = self.caches.dtype;
        let mut b =
            Build { g: Builder::new(self.gpu.caps), gpu: &self.gpu, caches: Some(&mut self.caches), cache_dtype, first, bands: self.bands };
        let pieces = b.decoder(&self.weights, frames, self.latent.1, self.latent.2)?;
        Ok((b.g, pieces))
    }

    /// The graph of a chunk with `bands` row bands, planned only: nothing is allocated.
    fn planned(&self, first: bool, frames: usize, bands: usize) -> Result<Builder> {
        let mut b = Build { g: Builder::new(self.gpu.caps), gpu: &self.gpu, caches: None, cache_dtype: self.caches.dtype, first, bands };
        b.decoder(&self.weights, frames, self.latent.1, self.latent.2)?;
        Ok(b.g)
    }

    /// Planned memory of a chunk of `frames` latent frames (not the first), without
    /// allocating it: of one graph call, at most [`VaeDecoder::chunk_limit`] frames.
    pub fn memory(&self, frames: usize) -> Result<VaeMemory> {
        let g = self.planned(false, frames.clamp(1, self.max_chunk), self.bands)?;
        let graph = g.graph();
        let sizes = |k: &[Kind]| graph.tensors.iter().filter(|t| k.contains(&t.kind)).map(|t| t.bytes()).collect::<Vec<_>>();
        let io: u64 = sizes(&[Kind::Input, Kind::Output]).iter().sum();
        // A cache is declared once for each frame that reads it: counted once.
        let caches: HashMap<&str, u64> =
            graph.tensors.iter().filter(|t| t.kind == Kind::State).map(|t| (t.name.as_str(), t.bytes())).collect();
        let pooled_bytes = Plan::new(graph, self.opts.reuse).planned_bytes();
        Ok(VaeMemory {
            activation_bytes: pooled_bytes + io,
            pooled_bytes,
            largest_tensor_bytes: sizes(&[Kind::Activation, Kind::Input, Kind::Output, Kind::State]).into_iter().max().unwrap_or(0),
            cache_bytes: caches.values().sum(),
            weight_bytes: sizes(&[Kind::Param]).iter().sum(),
            bands: self.bands,
        })
    }

    /// The shared activation buffers ([`Gpu::pooled_activations`]) the graphs of a video
    /// in chunks of `frames` latent frames take: per slot, the largest of their plans.
    pub fn pooled_sizes(&self, frames: usize) -> Result<Vec<u64>> {
        let mut sizes: Vec<u64> = Vec::new();
        for (first, n) in [(true, 1), (false, frames.clamp(1, self.max_chunk))] {
            let plan = Plan::new(self.planned(first, n, self.bands)?.graph(), self.opts.reuse);
            sizes.resize(sizes.len().max(plan.buffers.len()), 0);
            sizes.iter_mut().zip(&plan.buffers).for_each(|(s, &b)| *s = (*s).max(b));
        }
        Ok(sizes)
    }

    /// Takes the device's shared activation buffers at [`VaeDecoder::pooled_sizes`] and
    /// holds them: graphs compiled before the first decode then share them instead of
    /// keeping buffers the decoder would outgrow.
    pub fn reserve(&mut self, frames: usize) -> Result<()> {
        if self.opts.reuse {
            self.reserved = self.gpu.pooled_activations(&self.pooled_sizes(frames)?)?;
        }
        Ok(())
    }

    /// The compiled graph for this chunk length (built on first use).
    pub fn compiled(&mut self, first: bool, frames: usize) -> Result<&mut Compiled> {
        Ok(&mut self.compiled_with_pieces(first, frames)?.0)
    }

    fn compiled_with_pieces(&mut self, first: bool, frames: usize) -> Result<&mut (Compiled, usize)> {
        if !self.graphs.contains_key(&(first, frames)) {
            let (g, pieces) = self.builder(first, frames)?;
            let c = g.compile(&self.gpu, self.opts)?;
            log::info!(
                "VAE graph for {frames} latent frame(s){}, output in {pieces} piece(s): {}",
                if first { " (first)" } else { "" },
                c.report()
            );
            self.graphs.insert((first, frames), (c, pieces));
        }
        Ok(self.graphs.get_mut(&(first, frames)).expect("inserted above"))
    }

    fn run(&mut self, first: bool, frames: usize, latents: &[f32]) -> Result<Vec<f32>> {
        let (gpu, k, planes) = (self.gpu.clone(), self.bands, self.output_frames(frames) * 3);
        let (c, pieces) = self.compiled_with_pieces(first, frames)?;
        c.write(&gpu, "latents", latents)?;
        c.run(&gpu)?;
        // Pieces in time order, each of equal frames; within one, row bands top to bottom.
        let mut video = Vec::with_capacity(latents.len());
        for n in 0..*pieces {
            let bands = (0..k).map(|j| c.read(&gpu, &band_name(&format!("video#{n}"), j, k))).collect::<Result<Vec<_>>>()?;
            video.extend(join_planes(&bands, planes / *pieces));
        }
        video.iter_mut().for_each(|v| *v = v.clamp(-1.0, 1.0));
        Ok(video)
    }

    /// The fewest row bands with which every tensor of a one-latent-frame chunk fits
    /// one storage binding, every dispatch the workgroup grid and, with a budget, the
    /// chunk's pooled activations the budget; then the most latent frames a chunk may
    /// take. More bands plan less (they advance through the layers as a wavefront, and
    /// a layer holds only the bands its successor still reads) but cost dispatches and
    /// halo-row copies, so the count stops at the first that fits. If none does, the
    /// smallest plan is taken: the session's `--max-memory` check is what refuses.
    fn fit(&self) -> Result<(usize, usize)> {
        let mut over = None;
        // (pooled bytes, bands) of the smallest plan within the limits.
        let mut smallest: Option<(u64, usize)> = None;
        for bands in 1..=self.latent.1 {
            let g = self.planned(false, 1, bands)?;
            let frames = match self.within_limits(g.graph()) {
                Ok(frames) => frames,
                Err(e) => {
                    over = Some(e);
                    continue;
                }
            };
            let Some(budget) = self.budget else {
                log::info!("VAE decoder: {bands} row band(s), up to {frames} latent frame(s) a chunk");
                return Ok((bands, frames));
            };
            let planned = Plan::new(g.graph(), self.opts.reuse).planned_bytes().max(1);
            if planned <= budget {
                // A chunk of n latent frames plans at most n times one frame's: the
                // layers before the first temporal upsample hold its n frames, those
                // past it run one frame at a time.
                let frames = frames.min((budget / planned) as usize).max(1);
                log::info!(
                    "VAE decoder: {bands} row band(s), {} MiB of activations a latent frame (budget {} MiB), up to {frames} latent frame(s) a chunk",
                    planned >> 20,
                    budget >> 20
                );
                return Ok((bands, frames));
            }
            if smallest.is_none_or(|s| planned < s.0) {
                smallest = Some((planned, bands));
            }
        }
        if let (Some((planned, bands)), Some(budget)) = (smallest, self.budget) {
            log::warn!(
                "VAE decoder: no row band count plans a latent frame within {} MiB of activations; the smallest plan, {bands} bands, takes {} MiB",
                budget >> 20,
                planned >> 20
            );
            return Ok((bands, 1));
        }
        let (what, requested, limit) = over.expect("latent height is at least 1");
        Err(GraphError::Runtime(RuntimeError::LimitExceeded {
            what: format!("{what} of one latent frame split into {} row bands", self.latent.1),
            requested,
            limit,
            hint: "decode smaller latents, or use an adapter with larger storage bindings".into(),
        }))
    }

    /// The most latent frames a chunk may take if every tensor of the one-frame chunk
    /// `graph` fits one storage binding and every dispatch the workgroup grid (tensors
    /// and grids grow at most linearly with frames), else what exceeds which limit.
    fn within_limits(&self, graph: &Graph) -> std::result::Result<usize, (String, u64, u64)> {
        let limit = self.gpu.max_binding();
        let grid = self.gpu.limits.max_compute_workgroups_per_dimension as u64;
        let t = graph.tensors.iter().filter(|t| t.kind != Kind::Param).max_by_key(|t| t.bytes()).expect("the graph has tensors");
        let wg = graph.nodes.iter().flat_map(|n| n.kernel.workgroups_raw(&n.params)).max().unwrap_or(1).max(1) as u64;
        if t.bytes() > limit {
            Err((format!("VAE tensor {} {:?}", t.name, t.shape), t.bytes(), limit))
        } else if wg > grid {
            Err(("VAE dispatch workgroups".to_string(), wg, grid))
        } else {
            Ok((limit / t.bytes().max(1)).min(grid / wg).max(1) as usize)
        }
    }
}

/// Video values in [−1, 1] → 8-bit: round((x + 1) · 127.5).
pub fn to_rgb8(video: &[f32]) -> Vec<u8> {
    video.iter().map(|&v| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8).collect()
}
