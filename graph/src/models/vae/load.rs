//! Uploading the decoder half of a Wan VAE checkpoint into [`VaeWeights`]. Conv
//! weights are repacked for the conv3d kernel and converted to the device dtype;
//! norms and biases stay f32.
use super::weights::{AttentionBlock, Conv, Decoder, Linear, Resample, ResidualBlock, Upsample, VaeWeights};
use crate::error::Result;
use runtime::kernels::conv3d;
use runtime::{DType, Gpu, Tensor};
use weights::{Checkpoint, Prefix, VaeConfig, VaeUpsample};

struct Loader<'a> {
    gpu: &'a Gpu,
    wdtype: DType,
}

impl Loader<'_> {
    fn f32(&self, p: &Prefix, name: &str, shape: &[usize]) -> Result<Tensor> {
        let data = p.get(name, shape)?.to_f32();
        Ok(self.gpu.upload(&p.key(name), &[shape.iter().product()], DType::F32, &data)?)
    }

    /// A conv `[cout, cin, (kt,) kh, kw]`; 2D convs are stored as `kt = 1`.
    fn conv(&self, p: &Prefix, cin: usize, cout: usize, kernel: (usize, usize, usize), conv2d: bool) -> Result<Conv> {
        let (kt, kh, kw) = kernel;
        let shape: Vec<usize> = if conv2d { vec![cout, cin, kh, kw] } else { vec![cout, cin, kt, kh, kw] };
        let w = p.get("weight", &shape)?.to_f32();
        self.packed(p, w, p.get("bias", &[cout])?.to_f32(), cin, cout, kernel)
    }

    fn packed(&self, p: &Prefix, w: Vec<f32>, bias: Vec<f32>, cin: usize, cout: usize, kernel: (usize, usize, usize)) -> Result<Conv> {
        let (kt, kh, kw) = kernel;
        let packed = conv3d::repack(&w, cout, cin, kt, kh, kw);
        Ok(Conv {
            weight: self.gpu.upload(&p.key("weight"), &[kt * kh * kw * cin, cout], self.wdtype, &packed)?,
            bias: self.gpu.upload(&p.key("bias"), &[cout], DType::F32, &bias)?,
            cin,
            cout,
            kernel,
        })
    }

    fn linear(&self, p: &Prefix, cin: usize, cout: usize) -> Result<Linear> {
        let w = p.get("weight", &[cout, cin, 1, 1])?;
        Linear::upload_host(self.gpu, &p.key("weight"), cout, cin, self.wdtype, w, Some(self.f32(p, "bias", &[cout])?))
    }

    fn residual(&self, p: &Prefix, cin: usize, cout: usize) -> Result<ResidualBlock> {
        let r = p.pp("residual");
        Ok(ResidualBlock {
            norm0: self.f32(&r, "0.gamma", &[cin, 1, 1, 1])?,
            conv2: self.conv(&r.pp(2), cin, cout, (3, 3, 3), false)?,
            norm3: self.f32(&r, "3.gamma", &[cout, 1, 1, 1])?,
            conv6: self.conv(&r.pp(6), cout, cout, (3, 3, 3), false)?,
            shortcut: if cin != cout { Some(self.conv(&p.pp("shortcut"), cin, cout, (1, 1, 1), false)?) } else { None },
        })
    }

    fn attention(&self, p: &Prefix, c: usize) -> Result<AttentionBlock> {
        Ok(AttentionBlock {
            norm: self.f32(p, "norm.gamma", &[c, 1, 1])?,
            to_qkv: self.linear(&p.pp("to_qkv"), c, 3 * c)?,
            proj: self.linear(&p.pp("proj"), c, c)?,
        })
    }
}

/// Validates `ck` against `cfg` (every problem at once) and uploads the decoder.
pub fn load(gpu: &Gpu, cfg: &VaeConfig, ck: &Checkpoint, wdtype: DType) -> Result<VaeWeights> {
    let loader = weights::Loader::validated(ck, cfg.expected_tensors())?;
    let root = loader.root();
    let l = Loader { gpu, wdtype };
    let z = cfg.z_dim;

    // conv2 with z·std + mean folded in (see VaeWeights::conv2), in f64.
    let p = root.pp("conv2");
    let w = p.get("weight", &[z, z, 1, 1, 1])?.to_f32();
    let b = p.get("bias", &[z])?.to_f32();
    let (mean, std) = (&cfg.latent_mean, &cfg.latent_std);
    let folded: Vec<f32> = (0..z * z).map(|i| (w[i] as f64 * std[i % z] as f64) as f32).collect();
    let bias: Vec<f32> = (0..z).map(|o| (b[o] as f64 + (0..z).map(|i| w[o * z + i] as f64 * mean[i] as f64).sum::<f64>()) as f32).collect();
    let conv2 = l.packed(&p, folded, bias, z, z, (1, 1, 1))?;

    let d = root.pp("decoder");
    let dims = cfg.decoder_dims();
    let c0 = dims[0];
    let up = d.pp("upsamples");
    let upsamples = cfg
        .decoder_upsamples()
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let p = up.pp(i);
            Ok(match u {
                VaeUpsample::Residual { cin, cout } => Upsample::Residual(Box::new(l.residual(&p, cin, cout)?)),
                VaeUpsample::Attention { c } => Upsample::Attention(l.attention(&p, c)?),
                VaeUpsample::Resample { c, temporal } => Upsample::Resample(Resample {
                    time_conv: if temporal { Some(l.conv(&p.pp("time_conv"), c, 2 * c, (3, 1, 1), false)?) } else { None },
                    resample_1: l.conv(&p.pp("resample.1"), c, c / 2, (1, 3, 3), true)?,
                }),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let last = dims[dims.len() - 1];
    let decoder = Decoder {
        conv1: l.conv(&d.pp("conv1"), z, c0, (3, 3, 3), false)?,
        middle: (l.residual(&d.pp("middle.0"), c0, c0)?, l.attention(&d.pp("middle.1"), c0)?, l.residual(&d.pp("middle.2"), c0, c0)?),
        upsamples,
        head_0: l.f32(&d, "head.0.gamma", &[last, 1, 1, 1])?,
        head_2: l.conv(&d.pp("head.2"), last, 3, (3, 3, 3), false)?,
    };
    loader.finish();
    Ok(VaeWeights { conv2, decoder })
}
