//! The decoder graph of one chunk (TEXT_VAE.md C.2): latents `[F, z, h, w]` →
//! video `[n, 3, 8h, 8w]`. Activations are channels-last `[frames, H, W, C]`, so
//! the channel norms are row norms and the convs read pixels' channels contiguously.
//! Every causal time-kernel-3 conv reads the two frames before the chunk from its
//! cache (session state) and refreshes it with its own last two input frames.
use super::weights::{AttentionBlock, Conv, Linear, Resample, ResidualBlock, Upsample, VaeWeights};
use super::Caches;
use crate::builder::Builder;
use crate::error::{GraphError, Result};
use crate::ir::TensorId;
use crate::ops::Epilogue;
use runtime::kernels::{attention, conv3d, copy, norm};
use runtime::{DType, Gpu};

/// Builds one chunk's graph into `g`. `first` is the chunk holding the video's
/// first latent frame alone: it skips every temporal upsample's time conv.
pub(super) struct Build<'a> {
    pub g: Builder,
    pub gpu: &'a Gpu,
    pub caches: &'a mut Caches,
    pub first: bool,
}

/// `[frames, H, W, C]` of a channels-last activation.
fn geometry(g: &Builder, x: TensorId) -> (usize, usize, usize, usize) {
    let s = g.shape(x);
    (s[0], s[1], s[2], s[3])
}

impl Build<'_> {
    /// A causal conv of `x [F, H, W, Cin]`, on the nearest-2× grid with `upsample`,
    /// `+ residual` fused. Time-kernel-3 convs use and refresh their frame cache.
    fn conv(&mut self, name: &str, x: TensorId, c: &Conv, upsample: bool, residual: Option<TensorId>) -> Result<TensorId> {
        let (f, h, w, cin) = geometry(&self.g, x);
        if cin != c.cin {
            return Err(GraphError::Shape { op: name.into(), message: format!("{cin} input channels, the conv takes {}", c.cin) });
        }
        let p = conv3d::Params::new(f, h, w, cin, c.cout, c.kernel, upsample);
        let (oh, ow) = if upsample { (2 * h, 2 * w) } else { (h, w) };
        let cache = if c.kernel.0 > 1 {
            let t = self.caches.get(self.gpu, &format!("{name}.cache"), &[c.kernel.0 - 1, h, w, cin])?;
            Some(self.g.state(&format!("{name}.cache"), &t))
        } else {
            None
        };
        let weight = self.g.param(&format!("{name}.weight"), &c.weight);
        let bias = self.g.param(&format!("{name}.bias"), &c.bias);
        let y = self.g.activation(name, &[f, oh, ow, c.cout], DType::F32);
        // A conv without time taps never reads its cache binding: bind the input there.
        let mut args = vec![cache.unwrap_or(x), x, weight, bias];
        args.extend(residual);
        args.push(y);
        let kernel = conv3d::Conv3d::new(c.weight.dtype, upsample, residual.is_some(), c.cout);
        self.g.dispatch(name, kernel, &p, &args)?;
        if let Some(cache) = cache {
            self.refresh(name, x, cache, f, h * w * cin)?;
        }
        Ok(y)
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

    /// `RMS_norm`: F.normalize over channels · √C · gamma, then SiLU if asked.
    fn channel_norm(&mut self, name: &str, x: TensorId, gamma: &runtime::Tensor, silu: bool) -> Result<TensorId> {
        let (f, h, w, c) = geometry(&self.g, x);
        let gamma = self.g.param(&format!("{name}.gamma"), gamma);
        self.g.expect_shape(name, "gamma", gamma, &[c])?;
        let mut p = norm::Params::dense(f * h * w, c, 1e-12);
        p.gain = (c as f32).sqrt();
        let y = self.g.activation(name, &[f, h, w, c], DType::F32);
        let kernel = norm::Norm::for_device(&self.g.caps, norm::Stat::L2, norm::Scale::Weight, silu);
        self.g.dispatch(name, kernel, &p, &[x, gamma, y])?;
        Ok(y)
    }

    fn linear(&mut self, name: &str, x: TensorId, l: &Linear, epi: Epilogue) -> Result<TensorId> {
        l.forward(&mut self.g, name, x, epi)
    }

    fn residual(&mut self, name: &str, x: TensorId, r: &ResidualBlock) -> Result<TensorId> {
        let h = match &r.shortcut {
            Some(s) => self.conv(&format!("{name}.shortcut"), x, s, false, None)?,
            None => x,
        };
        let a = self.channel_norm(&format!("{name}.residual.0"), x, &r.norm0, true)?;
        let a = self.conv(&format!("{name}.residual.2"), a, &r.conv2, false, None)?;
        let a = self.channel_norm(&format!("{name}.residual.3"), a, &r.norm3, true)?;
        self.conv(&format!("{name}.residual.6"), a, &r.conv6, false, Some(h))
    }

    /// Single-head attention over the pixels of each frame, `proj` + identity.
    fn attention(&mut self, name: &str, x: TensorId, a: &AttentionBlock) -> Result<TensorId> {
        let (f, h, w, c) = geometry(&self.g, x);
        let pixels = h * w;
        let xn = self.channel_norm(&format!("{name}.norm"), x, &a.norm, false)?;
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
            self.g.dispatch(&format!("{name}.attn.{t}"), attention::Attention::new(c, false), &p, &[qkv, qkv, qkv, ranges, o])?;
        }
        self.linear(&format!("{name}.proj"), o, &a.proj, Epilogue::Residual(x))
    }

    /// Temporal (except in the first chunk) then spatial 2× upsampling, halving the channels.
    fn resample(&mut self, name: &str, mut x: TensorId, r: &Resample) -> Result<TensorId> {
        if let (Some(tc), false) = (&r.time_conv, self.first) {
            let t = self.conv(&format!("{name}.time_conv"), x, tc, false, None)?;
            let (f, h, w, c2) = geometry(&self.g, t);
            let c = c2 / 2;
            x = self.g.copy_new(&format!("{name}.split"), t, &[2 * f, h, w, c], &copy::Params::split_frames(f, h * w, c))?;
        }
        self.conv(&format!("{name}.resample.1"), x, &r.resample_1, true, None)
    }

    /// The whole decoder on `latents [F, z, h, w]` (generator scale); output `video`.
    pub fn decoder(&mut self, wts: &VaeWeights, frames: usize, h: usize, w: usize) -> Result<()> {
        let z = wts.conv2.cin;
        let latents = self.g.input("latents", &[frames, z, h, w], DType::F32);
        let x = self.g.copy_new("latents.channels_last", latents, &[frames, h, w, z], &copy::Params::to_channels_last(frames, z, h * w))?;
        let x = self.conv("conv2", x, &wts.conv2, false, None)?;
        let d = &wts.decoder;
        let x = self.conv("decoder.conv1", x, &d.conv1, false, None)?;
        let x = self.residual("decoder.middle.0", x, &d.middle.0)?;
        let x = self.attention("decoder.middle.1", x, &d.middle.1)?;
        let mut x = self.residual("decoder.middle.2", x, &d.middle.2)?;
        for (i, u) in d.upsamples.iter().enumerate() {
            let name = format!("decoder.upsamples.{i}");
            x = match u {
                Upsample::Residual(r) => self.residual(&name, x, r)?,
                Upsample::Attention(a) => self.attention(&name, x, a)?,
                Upsample::Resample(r) => self.resample(&name, x, r)?,
            };
        }
        let x = self.channel_norm("decoder.head.0", x, &d.head_0, true)?;
        let x = self.conv("decoder.head.2", x, &d.head_2, false, None)?;
        let (f, oh, ow, c) = geometry(&self.g, x);
        let video = self.g.copy_new("video", x, &[f, c, oh, ow], &copy::Params::to_channels_first(f, oh * ow, c))?;
        self.g.output(video, "video");
        Ok(())
    }
}
