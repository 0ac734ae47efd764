//! The decoder graph of one chunk (TEXT_VAE.md C.2): latents `[F, z, h, w]` →
//! video `[n, 3, 8h, 8w]`. Activations are channels-last `[frames, H, W, C]`, so
//! the channel norms are row norms and the convs read pixels' channels contiguously.
//! Every causal time-kernel-3 conv reads the two frames before the chunk from its
//! cache (session state) and refreshes it with its own last two input frames.
//! Past the last attention, activations are row bands (`bands.rs`).
use super::bands::{band_name, Banded};
use super::weights::{AttentionBlock, Conv, Decoder, Linear, Resample, ResidualBlock, Upsample, VaeWeights};
use super::Caches;
use crate::builder::Builder;
use crate::error::{GraphError, Result};
use crate::ir::TensorId;
use crate::ops::Epilogue;
use runtime::kernels::{attention, conv3d, copy, norm};
use runtime::{DType, Gpu};

/// Builds one chunk's graph into `g`. `first` is the chunk holding the video's
/// first latent frame alone: it skips every temporal upsample's time conv.
/// Without `caches` the graph is only planned (sized, never compiled).
pub(super) struct Build<'a> {
    pub g: Builder,
    pub gpu: &'a Gpu,
    pub caches: Option<&'a mut Caches>,
    /// The caches' dtype (f16 or f32), also when only planning.
    pub cache_dtype: DType,
    pub first: bool,
    /// Row bands past the last attention.
    pub bands: usize,
}

/// `[frames, H, W, C]` of a channels-last activation.
pub(super) fn geometry(g: &Builder, x: TensorId) -> (usize, usize, usize, usize) {
    let s = g.shape(x);
    (s[0], s[1], s[2], s[3])
}

impl Build<'_> {
    /// The frame cache `name`: the session's tensor, or declared by shape when only planning.
    fn cache(&mut self, name: &str, shape: &[usize]) -> Result<TensorId> {
        match self.caches.as_deref_mut() {
            Some(c) => {
                let t = c.get(self.gpu, name, shape)?;
                Ok(self.g.state(name, &t))
            }
            None => Ok(self.g.planned_state(name, shape, self.cache_dtype)),
        }
    }

    /// A causal conv of `x [F, H, W, Cin]`, on the nearest-2× grid with `upsample`,
    /// `+ residual` fused. Time-kernel-3 convs use and refresh their frame cache.
    fn conv(&mut self, name: &str, x: &Banded, c: &Conv, upsample: bool, residual: Option<&Banded>) -> Result<Banded> {
        let k = x.parts.len();
        let mut caches = Vec::new();
        if c.kernel.0 > 1 {
            for (j, &t) in x.parts.iter().enumerate() {
                let (_, h, w, cin) = geometry(&self.g, t);
                caches.push(self.cache(&band_name(&format!("{name}.cache"), j, k), &[c.kernel.0 - 1, h, w, cin])?);
            }
        }
        let weight = self.g.param(&format!("{name}.weight"), &c.weight);
        let bias = self.g.param(&format!("{name}.bias"), &c.bias);
        let up = if upsample { 2 } else { 1 };
        let mut out = Vec::with_capacity(k);
        for j in 0..k {
            let label = band_name(name, j, k);
            let (f, h, w, cin) = geometry(&self.g, x.parts[j]);
            if cin != c.cin {
                return Err(GraphError::Shape { op: label, message: format!("{cin} input channels, the conv takes {}", c.cin) });
            }
            // 3×3 convs of a band read a row of each neighbour band, and so do their caches.
            let halo = |b: &mut Self, what: &str, parts: &[TensorId]| match c.kernel.1 {
                1 => Ok((parts[j], 0)),
                _ => b.with_halo(&format!("{label}.{what}"), parts, j),
            };
            let (src, top) = halo(self, "halo", &x.parts)?;
            let cache = if caches.is_empty() { None } else { Some(halo(self, "cache_halo", &caches)?.0) };
            let mut p = conv3d::Params::new(f, geometry(&self.g, src).1, w, cin, c.cout, c.kernel, upsample);
            (p.y0, p.rows) = ((up * top) as u32, (up * h) as u32);
            let y = self.g.activation(&label, &[f, up * h, up * w, c.cout], DType::F32);
            // A conv without time taps never reads its cache binding: bind the input there.
            let mut args = vec![cache.unwrap_or(src), src, weight, bias];
            args.extend(residual.map(|r| r.parts[j]));
            args.push(y);
            let cache_f16 = cache.is_some_and(|t| self.g.dtype(t) == DType::F16);
            let kernel = conv3d::Conv3d {
                cache_f16,
                ..conv3d::Conv3d::for_device(&self.g.caps, c.weight.dtype, upsample, residual.is_some(), c.cout)
            };
            self.g.dispatch(&label, kernel, &p, &args)?;
            out.push(y);
        }
        // Only now: the halos of later bands read the caches of the bands before them.
        for (j, &cache) in caches.iter().enumerate() {
            let (f, h, w, cin) = geometry(&self.g, x.parts[j]);
            self.refresh(&band_name(name, j, k), x.parts[j], cache, f, h * w * cin)?;
        }
        Ok(Banded { parts: out })
    }

    /// cache ← the last two frames of `[cache; x]`.
    fn refresh(&mut self, name: &str, x: TensorId, cache: TensorId, f: usize, frame: usize) -> Result<()> {
        let span = |n: usize, from: usize, to: usize| copy::Params::new(&[n * frame], from * frame, &[1], to * frame, &[1]);
        if f >= 2 {
            self.g.copy_into(&format!("{name}.cache_write"), x, cache, &span(2, f - 2, 0))?;
        } else {
            // Slot 1 moves to slot 0 through a temporary: one dispatch may not read and write a buffer.
            let older = self.g.copy_new(&format!("{name}.cache_shift"), cache, &[frame], &span(1, 1, 0))?;
            self.g.copy_into(&format!("{name}.cache_shift"), older, cache, &span(1, 0, 0))?;
            self.g.copy_into(&format!("{name}.cache_write"), x, cache, &span(1, 0, 1))?;
        }
        Ok(())
    }

    /// `RMS_norm`: F.normalize over channels · √C · gamma, then SiLU if asked (per pixel, so band by band).
    fn channel_norm(&mut self, name: &str, x: &Banded, gamma: &runtime::Tensor, silu: bool) -> Result<Banded> {
        let gamma = self.g.param(&format!("{name}.gamma"), gamma);
        let k = x.parts.len();
        let mut parts = Vec::with_capacity(k);
        for (j, &t) in x.parts.iter().enumerate() {
            let label = band_name(name, j, k);
            let (f, h, w, c) = geometry(&self.g, t);
            self.g.expect_shape(&label, "gamma", gamma, &[c])?;
            let mut p = norm::Params::dense(f * h * w, c, 1e-12);
            p.gain = (c as f32).sqrt();
            let y = self.g.activation(&label, &[f, h, w, c], DType::F32);
            let kernel = norm::Norm::for_device(&self.g.caps, norm::Stat::L2, norm::Scale::Weight, silu);
            self.g.dispatch(&label, kernel, &p, &[t, gamma, y])?;
            parts.push(y);
        }
        Ok(Banded { parts })
    }

    fn linear(&mut self, name: &str, x: TensorId, l: &Linear, epi: Epilogue) -> Result<TensorId> {
        l.forward(&mut self.g, name, x, epi)
    }

    fn residual(&mut self, name: &str, x: &Banded, r: &ResidualBlock) -> Result<Banded> {
        let h = match &r.shortcut {
            Some(s) => self.conv(&format!("{name}.shortcut"), x, s, false, None)?,
            None => x.clone(),
        };
        let a = self.channel_norm(&format!("{name}.residual.0"), x, &r.norm0, true)?;
        let a = self.conv(&format!("{name}.residual.2"), &a, &r.conv2, false, None)?;
        let a = self.channel_norm(&format!("{name}.residual.3"), &a, &r.norm3, true)?;
        self.conv(&format!("{name}.residual.6"), &a, &r.conv6, false, Some(&h))
    }

    /// Single-head attention over the pixels of each frame, `proj` + identity.
    fn attention(&mut self, name: &str, x: &Banded, a: &AttentionBlock) -> Result<Banded> {
        let x = x.single(name)?;
        let (f, h, w, c) = geometry(&self.g, x);
        let pixels = h * w;
        let xn = self.channel_norm(&format!("{name}.norm"), &Banded::whole(x), &a.norm, false)?.single(name)?;
        let qkv = self.linear(&format!("{name}.to_qkv"), xn, &a.to_qkv, Epilogue::None)?;
        let keys = self.gpu.upload(&format!("{name}.ranges"), &[1, 2], DType::U32, &[0.0, pixels as f32])?;
        let ranges = self.g.param(&format!("{name}.ranges"), &keys);
        let o = self.g.activation(&format!("{name}.attn"), &[f, h, w, c], DType::F32);
        // One dispatch per frame: q, k, v are column blocks of the frame's qkv rows.
        for t in 0..f {
            let mut p = attention::Params::dense(pixels, 1, c, 1, 1.0 / (c as f32).sqrt());
            let base = (t * pixels * 3 * c) as u32;
            (p.q_off, p.k_off, p.v_off, p.o_off) = (base, base + c as u32, base + 2 * c as u32, (t * pixels * c) as u32);
            (p.q_row, p.k_row, p.v_row) = (3 * c as u32, 3 * c as u32, 3 * c as u32);
            self.g.dispatch(
                &format!("{name}.attn.{t}"),
                attention::Attention::for_device(&self.g.caps, c, false, a.to_qkv.dtype(), DType::F32),
                &p,
                &[qkv, qkv, qkv, ranges, o],
            )?;
        }
        Ok(Banded::whole(self.linear(&format!("{name}.proj"), o, &a.proj, Epilogue::Residual(x))?))
    }

    /// Temporal 2× upsampling: the time conv `tc` makes two frames of each.
    fn time_upsample(&mut self, name: &str, x: &Banded, tc: &Conv) -> Result<Banded> {
        let t = self.conv(&format!("{name}.time_conv"), x, tc, false, None)?;
        let k = t.parts.len();
        let mut x = x.clone();
        for (j, &part) in t.parts.iter().enumerate() {
            let (f, h, w, c2) = geometry(&self.g, part);
            let c = c2 / 2;
            let p = copy::Params::split_frames(f, h * w, c);
            x.parts[j] = self.g.copy_new(&band_name(&format!("{name}.split"), j, k), part, &[2 * f, h, w, c], &p)?;
        }
        Ok(x)
    }

    /// Spatial 2× upsampling, halving the channels (frame by frame: `resample.1` is 2-D).
    fn spatial_upsample(&mut self, name: &str, x: &Banded, r: &Resample) -> Result<Banded> {
        self.conv(&format!("{name}.resample.1"), x, &r.resample_1, true, None)
    }

    /// The whole decoder on `latents [F, z, h, w]` (generator scale); outputs the video
    /// in pieces `video#n` (see [`Build::upsamples`]), returning how many.
    pub fn decoder(&mut self, wts: &VaeWeights, frames: usize, h: usize, w: usize) -> Result<usize> {
        let z = wts.conv2.cin;
        let latents = self.g.input("latents", &[frames, z, h, w], DType::F32);
        let x = self.g.copy_new("latents.channels_last", latents, &[frames, h, w, z], &copy::Params::to_channels_last(frames, z, h * w))?;
        let x = self.conv("conv2", &Banded::whole(x), &wts.conv2, false, None)?;
        let d = &wts.decoder;
        let x = self.conv("decoder.conv1", &x, &d.conv1, false, None)?;
        let x = self.residual("decoder.middle.0", &x, &d.middle.0)?;
        let x = self.attention("decoder.middle.1", &x, &d.middle.1)?;
        let x = self.residual("decoder.middle.2", &x, &d.middle.2)?;
        let mut pieces = 0;
        self.upsamples(d, 0, x, &mut pieces)?;
        // Row bands then advance through the layers as a wavefront: each layer holds
        // only the bands its successor still reads, so more bands plan less memory.
        self.g.schedule_depth_first();
        Ok(pieces)
    }

    /// `decoder.upsamples[from..]` and the head on `x`, output as pieces `video#n` in
    /// time order. Past a temporal upsample every layer is causal frame by frame, with
    /// its caches carried from one frame to the next as from one chunk to the next, so
    /// the frames it makes run one at a time through the rest, depth first: the device
    /// holds one frame's activations at the large sizes instead of the chunk's, and the
    /// video is the same.
    fn upsamples(&mut self, d: &Decoder, from: usize, mut x: Banded, pieces: &mut usize) -> Result<()> {
        // Bands start after the last attention, which needs whole frames.
        let banded_from = d.upsamples.iter().rposition(|u| matches!(u, Upsample::Attention(_))).map_or(0, |i| i + 1);
        for (i, u) in d.upsamples.iter().enumerate().skip(from) {
            let name = format!("decoder.upsamples.{i}");
            if i >= banded_from {
                x = self.split("decoder.bands", x)?;
            }
            x = match u {
                Upsample::Residual(r) => self.residual(&name, &x, r)?,
                Upsample::Attention(a) => self.attention(&name, &x, a)?,
                // The first chunk skips the temporal upsampling.
                Upsample::Resample(r @ Resample { time_conv: Some(tc), .. }) if !self.first => {
                    let x = self.time_upsample(&name, &x, tc)?;
                    // Split before the spatial 2×: what waits for the later frames is a quarter of the size.
                    for t in 0..geometry(&self.g, x.parts[0]).0 {
                        let one = self.frame(&format!("{name}.frame{t}"), &x, t)?;
                        let one = self.spatial_upsample(&name, &one, r)?;
                        self.upsamples(d, i + 1, one, pieces)?;
                    }
                    return Ok(());
                }
                Upsample::Resample(r) => self.spatial_upsample(&name, &x, r)?,
            };
        }
        let x = self.split("decoder.bands", x)?;
        let x = self.channel_norm("decoder.head.0", &x, &d.head_0, true)?;
        let x = self.conv("decoder.head.2", &x, &d.head_2, false, None)?;
        self.output_channels_first(&format!("video#{pieces}"), &x)?;
        *pieces += 1;
        Ok(())
    }

    /// Frame `t` of every band of `x`.
    fn frame(&mut self, name: &str, x: &Banded, t: usize) -> Result<Banded> {
        let k = x.parts.len();
        let parts = x
            .parts
            .iter()
            .enumerate()
            .map(|(j, &part)| {
                let (_, h, w, c) = geometry(&self.g, part);
                let n = h * w * c;
                self.g.copy_new(&band_name(name, j, k), part, &[1, h, w, c], &copy::Params::new(&[n], t * n, &[1], 0, &[1]))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Banded { parts })
    }
}
