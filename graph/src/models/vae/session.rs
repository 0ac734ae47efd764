//! A streaming decode session: compiled graphs per chunk length, the causal caches
//! carried from chunk to chunk, and the adapter limits that bound a chunk.
use super::graph::Build;
use super::weights::VaeWeights;
use super::{load, Caches};
use crate::builder::Builder;
use crate::error::{GraphError, Result};
use crate::executor::{CompileOptions, Compiled};
use crate::ir::Kind;
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
    /// The largest single activation: what must fit one storage binding.
    pub largest_tensor_bytes: u64,
    /// The per-conv frame caches (shared by every chunk length).
    pub cache_bytes: u64,
    pub weight_bytes: u64,
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
    /// Compiled graphs by (first chunk, latent frames).
    graphs: HashMap<(bool, usize), Compiled>,
    /// Whether the video's first latent frame has been decoded.
    started: bool,
    /// Latent frames per graph call that fit the adapter (computed on first use).
    max_chunk: Option<usize>,
    opts: CompileOptions,
}

impl VaeDecoder {
    /// Uploads the decoder of `ck` (validated against `cfg`) for latents of `latent_h × latent_w`.
    pub fn load(gpu: Arc<Gpu>, ck: &Checkpoint, cfg: &VaeConfig, wdtype: DType, latent_h: usize, latent_w: usize) -> Result<VaeDecoder> {
        let weights = load::load(&gpu, cfg, ck, wdtype)?;
        VaeDecoder::new(gpu, weights, cfg, latent_h, latent_w, CompileOptions::default())
    }

    pub fn new(gpu: Arc<Gpu>, weights: VaeWeights, cfg: &VaeConfig, h: usize, w: usize, opts: CompileOptions) -> Result<VaeDecoder> {
        if h == 0 || w == 0 {
            return Err(GraphError::input(
                "latent size",
                format!("{h}×{w}, expected at least 1×1: pass the latent height and width (video size / 8)"),
            ));
        }
        let ups = cfg.decoder_upsamples();
        let temporal = 1 << ups.iter().filter(|u| matches!(u, VaeUpsample::Resample { temporal: true, .. })).count();
        let spatial = 1 << ups.iter().filter(|u| matches!(u, VaeUpsample::Resample { .. })).count();
        Ok(VaeDecoder {
            gpu,
            weights,
            latent: (cfg.z_dim, h, w),
            temporal,
            spatial,
            caches: Caches::default(),
            graphs: HashMap::new(),
            started: false,
            max_chunk: None,
            opts,
        })
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
        let max_chunk = self.max_chunk()?;
        let mut out = Vec::with_capacity(self.output_frames(frames) * 3 * h * w * self.spatial * self.spatial);
        let mut start = 0;
        while start < frames {
            let first = !self.started;
            // The first latent frame runs alone: its temporal upsamples pass it through.
            let n = if first { 1 } else { max_chunk.min(frames - start) };
            out.extend(self.run(first, n, &latents[start * per_frame..(start + n) * per_frame])?);
            self.started = true;
            start += n;
        }
        Ok(out)
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

    fn builder(&mut self, first: bool, frames: usize) -> Result<Builder> {
        let mut b = Build { g: Builder::new(self.gpu.caps), gpu: &self.gpu, caches: &mut self.caches, first };
        b.decoder(&self.weights, frames, self.latent.1, self.latent.2)?;
        Ok(b.g)
    }

    /// Planned memory of one chunk of `frames` latent frames (not the first), without allocating it.
    pub fn memory(&mut self, frames: usize) -> Result<VaeMemory> {
        let g = self.builder(false, frames)?;
        let graph = g.graph();
        let sizes = |k: &[Kind]| graph.tensors.iter().filter(|t| k.contains(&t.kind)).map(|t| t.bytes()).collect::<Vec<_>>();
        let io: u64 = sizes(&[Kind::Input, Kind::Output]).iter().sum();
        Ok(VaeMemory {
            activation_bytes: Plan::new(graph, self.opts.reuse).planned_bytes() + io,
            largest_tensor_bytes: sizes(&[Kind::Activation, Kind::Input, Kind::Output]).into_iter().max().unwrap_or(0),
            cache_bytes: self.caches.bytes(),
            weight_bytes: sizes(&[Kind::Param]).iter().sum(),
        })
    }

    /// The compiled graph for this chunk length (built on first use).
    pub fn compiled(&mut self, first: bool, frames: usize) -> Result<&mut Compiled> {
        if !self.graphs.contains_key(&(first, frames)) {
            let g = self.builder(first, frames)?;
            let c = g.compile(&self.gpu, self.opts)?;
            log::info!("VAE graph for {frames} latent frame(s){}: {}", if first { " (first)" } else { "" }, c.report());
            self.graphs.insert((first, frames), c);
        }
        Ok(self.graphs.get_mut(&(first, frames)).expect("inserted above"))
    }

    fn run(&mut self, first: bool, frames: usize, latents: &[f32]) -> Result<Vec<f32>> {
        let gpu = self.gpu.clone();
        let c = self.compiled(first, frames)?;
        c.write(&gpu, "latents", latents)?;
        c.run(&gpu)?;
        let mut video = c.read(&gpu, "video")?;
        video.iter_mut().for_each(|v| *v = v.clamp(-1.0, 1.0));
        Ok(video)
    }

    /// The most latent frames one graph call may take on this adapter: every
    /// activation must fit one storage binding, and the widest conv's pixel rows the
    /// workgroup grid (conv3d dispatches 32 pixels per workgroup along y).
    fn max_chunk(&mut self) -> Result<usize> {
        if let Some(n) = self.max_chunk {
            return Ok(n);
        }
        let largest = self.memory(1)?.largest_tensor_bytes;
        let limit = self.gpu.max_binding();
        let (h, w) = self.video_size();
        let pixels = (self.temporal * h * w) as u64;
        let grid = self.gpu.limits.max_compute_workgroups_per_dimension as u64 * 32;
        if largest > limit || pixels > grid {
            let (what, requested, limit) =
                if largest > limit { ("VAE activation of one latent frame", largest, limit) } else { ("VAE conv pixels", pixels, grid) };
            return Err(GraphError::Runtime(RuntimeError::LimitExceeded {
                what: what.into(),
                requested,
                limit,
                hint: "decode smaller latents, or use an adapter with larger storage bindings".into(),
            }));
        }
        let n = (limit / largest).min(grid / pixels).max(1) as usize;
        self.max_chunk = Some(n);
        Ok(n)
    }
}

/// Video values in [−1, 1] → 8-bit: round((x + 1) · 127.5).
pub fn to_rgb8(video: &[f32]) -> Vec<u8> {
    video.iter().map(|&v| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8).collect()
}
