//! The Wan video VAE's constructor settings and the decoder half of its state dict.
use super::{read_json, Checker};
use crate::error::Result;
use crate::validate::Expected;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct VaeConfig {
    pub dim: usize,
    pub z_dim: usize,
    pub dim_mult: Vec<usize>,
    pub num_res_blocks: usize,
    pub attn_scales: Vec<f64>,
    pub temperal_downsample: Vec<bool>,
    #[serde(default)]
    pub dropout: f64,
    /// Per latent channel: z_vae = z · std + mean (TEXT_VAE.md C.2).
    pub latent_mean: Vec<f32>,
    pub latent_std: Vec<f32>,
    /// Chunk sizes in latent frames for streamed decoding (parity bundles only).
    #[serde(default)]
    pub streamed_chunks: Option<Vec<usize>>,
}

/// One entry of the decoder's `upsamples` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaeUpsample {
    /// `ResidualBlock(cin, cout)`
    Residual { cin: usize, cout: usize },
    /// `AttentionBlock(c)` (where `attn_scales` asks for one)
    Attention { c: usize },
    /// `Resample(c, upsample3d | upsample2d)`: output width `c / 2`, twice the size,
    /// and with `temporal` twice the frames.
    Resample { c: usize, temporal: bool },
}

impl VaeConfig {
    /// The released `Wan2.1_VAE.pth` (the official `WanVAE` wrapper's settings and
    /// latent statistics, the same as in the parity bundles' `config.json`).
    pub fn wan2_1() -> VaeConfig {
        VaeConfig {
            dim: 96,
            z_dim: 16,
            dim_mult: vec![1, 2, 4, 4],
            num_res_blocks: 2,
            attn_scales: vec![],
            temperal_downsample: vec![false, true, true],
            dropout: 0.0,
            latent_mean: vec![
                -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497,
                0.2503, -0.2921,
            ],
            latent_std: vec![
                2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251,
                1.916,
            ],
            streamed_chunks: None,
        }
    }

    pub fn load(path: &Path) -> Result<VaeConfig> {
        let c: VaeConfig = read_json(path)?;
        c.validate(path)?;
        Ok(c)
    }

    pub fn validate(&self, path: &Path) -> Result<()> {
        let c = Checker { path };
        c.size(self.dim, "dim")?;
        c.size(self.z_dim, "z_dim")?;
        c.ensure((0..=16).contains(&self.num_res_blocks), "num_res_blocks", || format!("{} is outside 0..=16", self.num_res_blocks))?;
        // Stages 1–3 take half the width of the stage before (Wan's Decoder3d hard-codes
        // it), which matches what each resample hands over only for up to 4 stages.
        let m = &self.dim_mult;
        c.ensure((1..=4).contains(&m.len()), "dim_mult", || format!("{m:?} must have 1 to 4 entries"))?;
        for &u in m {
            c.ensure((1..=1024).contains(&u) && self.dim * u >= 2, "dim_mult", || format!("{u} must be in 1..=1024 with dim·mult ≥ 2"))?;
        }
        let t = &self.temperal_downsample;
        c.ensure(t.len() + 1 == m.len(), "temperal_downsample", || {
            format!("{t:?} needs {} entries, one per stage but the last of dim_mult", m.len() - 1)
        })?;
        let z = self.z_dim;
        c.ensure(self.latent_mean.len() == z, "latent_mean", || format!("{} entries, z_dim = {z} expected", self.latent_mean.len()))?;
        c.ensure(self.latent_std.len() == z, "latent_std", || format!("{} entries, z_dim = {z} expected", self.latent_std.len()))?;
        c.ensure(self.latent_std.iter().all(|s| s.is_finite() && *s > 0.0), "latent_std", || {
            "every entry must be positive and finite".into()
        })?;
        c.ensure(self.latent_mean.iter().all(|s| s.is_finite()), "latent_mean", || "every entry must be finite".into())?;
        if let Some(chunks) = &self.streamed_chunks {
            c.ensure(chunks.iter().all(|&n| n > 0), "streamed_chunks", || format!("{chunks:?}: chunk sizes must be positive"))?;
        }
        Ok(())
    }

    /// Channel widths of the decoder: the input width, then one per stage.
    pub fn decoder_dims(&self) -> Vec<usize> {
        let m = &self.dim_mult;
        std::iter::once(m[m.len() - 1]).chain(m.iter().rev().copied()).map(|u| self.dim * u).collect()
    }

    /// The entries of `decoder.upsamples`, in order, with their widths.
    pub fn decoder_upsamples(&self) -> Vec<VaeUpsample> {
        let dims = self.decoder_dims();
        let stages = self.dim_mult.len();
        let mut scale = 1.0 / 2f64.powi(stages as i32 - 2);
        let mut out = Vec::new();
        for i in 0..stages {
            let (mut cin, cout) = (dims[i], dims[i + 1]);
            // Stages 1–3 take what the previous resample hands over: half its width.
            if (1..=3).contains(&i) {
                cin /= 2;
            }
            for _ in 0..=self.num_res_blocks {
                out.push(VaeUpsample::Residual { cin, cout });
                if self.attn_scales.contains(&scale) {
                    out.push(VaeUpsample::Attention { c: cout });
                }
                cin = cout;
            }
            if i + 1 != stages {
                // temperal_downsample reversed: the decoder's first stage mirrors the encoder's last.
                out.push(VaeUpsample::Resample { c: cout, temporal: self.temperal_downsample[stages - 2 - i] });
                scale *= 2.0;
            }
        }
        out
    }

    /// `conv2.*` and `decoder.*` as Wan's `Decoder3d` names them; the encoder half is ignored.
    pub fn expected_tensors(&self) -> Expected {
        let mut e = Expected::default();
        e.ignore_prefix("encoder.");
        e.ignore_prefix("conv1.");
        let conv = |e: &mut Expected, key: &str, out: usize, inp: usize, kernel: &[usize]| {
            e.float(format!("{key}.weight"), &[&[out, inp][..], kernel].concat());
            e.float(format!("{key}.bias"), &[out]);
        };
        let residual = |e: &mut Expected, key: &str, inp: usize, out: usize| {
            e.float(format!("{key}.residual.0.gamma"), &[inp, 1, 1, 1]);
            conv(e, &format!("{key}.residual.2"), out, inp, &[3, 3, 3]);
            e.float(format!("{key}.residual.3.gamma"), &[out, 1, 1, 1]);
            conv(e, &format!("{key}.residual.6"), out, out, &[3, 3, 3]);
            if inp != out {
                conv(e, &format!("{key}.shortcut"), out, inp, &[1, 1, 1]);
            }
        };
        let attention = |e: &mut Expected, key: &str, c: usize| {
            e.float(format!("{key}.norm.gamma"), &[c, 1, 1]);
            conv(e, &format!("{key}.to_qkv"), 3 * c, c, &[1, 1]);
            conv(e, &format!("{key}.proj"), c, c, &[1, 1]);
        };
        let dims = self.decoder_dims();
        let z = self.z_dim;
        conv(&mut e, "conv2", z, z, &[1, 1, 1]);
        conv(&mut e, "decoder.conv1", dims[0], z, &[3, 3, 3]);
        residual(&mut e, "decoder.middle.0", dims[0], dims[0]);
        attention(&mut e, "decoder.middle.1", dims[0]);
        residual(&mut e, "decoder.middle.2", dims[0], dims[0]);
        for (idx, stage) in self.decoder_upsamples().into_iter().enumerate() {
            let key = format!("decoder.upsamples.{idx}");
            match stage {
                VaeUpsample::Residual { cin, cout } => residual(&mut e, &key, cin, cout),
                VaeUpsample::Attention { c } => attention(&mut e, &key, c),
                VaeUpsample::Resample { c, temporal } => {
                    if temporal {
                        conv(&mut e, &format!("{key}.time_conv"), 2 * c, c, &[3, 1, 1]);
                    }
                    conv(&mut e, &format!("{key}.resample.1"), c / 2, c, &[3, 3]);
                }
            }
        }
        let last = dims[self.dim_mult.len()];
        e.float("decoder.head.0.gamma", &[last, 1, 1, 1]);
        conv(&mut e, "decoder.head.2", 3, last, &[3, 3, 3]);
        e
    }
}
