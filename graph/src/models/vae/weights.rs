//! The decoder half of the Wan VAE on the device, one struct per checkpoint module
//! and fields named after the checkpoint keys (`decoder.middle.0.residual.2` …).
use runtime::Tensor;

/// A causal conv (`CausalConv3d`, or a `Conv2d` seen as kernel `(1, kh, kw)`):
/// weight repacked to the conv3d kernel's `[kt·kh·kw·Cin, Cout]`, bias `[Cout]`.
#[derive(Clone)]
pub struct Conv {
    pub weight: Tensor,
    pub bias: Tensor,
    pub cin: usize,
    pub cout: usize,
    /// `(kt, kh, kw)`
    pub kernel: (usize, usize, usize),
}

/// `nn.Conv2d` with a 1×1 kernel, used per pixel, is a linear over channels.
pub use crate::models::linear::Linear;

/// `ResidualBlock`: `residual.{0,2,3,6}` = RMS norm → SiLU → conv → RMS norm → SiLU →
/// (dropout) → conv, plus `shortcut` (1×1×1 conv) when the widths differ.
#[derive(Clone)]
pub struct ResidualBlock {
    /// `residual.0.gamma [Cin]`
    pub norm0: Tensor,
    pub conv2: Conv,
    /// `residual.3.gamma [Cout]`
    pub norm3: Tensor,
    pub conv6: Conv,
    pub shortcut: Option<Conv>,
}

/// `AttentionBlock`: single-head attention over the pixels of each frame.
#[derive(Clone)]
pub struct AttentionBlock {
    /// `norm.gamma [C]`
    pub norm: Tensor,
    /// `to_qkv [C, 3C]`: q | k | v column blocks.
    pub to_qkv: Linear,
    pub proj: Linear,
}

/// `Resample` in an upsampling mode: `time_conv` (upsample3d only), then nearest 2×
/// and `resample.1`, the 3×3 conv halving the channels.
#[derive(Clone)]
pub struct Resample {
    pub time_conv: Option<Conv>,
    pub resample_1: Conv,
}

/// One entry of `decoder.upsamples`.
#[derive(Clone)]
pub enum Upsample {
    Residual(Box<ResidualBlock>),
    Attention(AttentionBlock),
    Resample(Resample),
}

#[derive(Clone)]
pub struct Decoder {
    pub conv1: Conv,
    /// `middle.0`, `middle.1`, `middle.2`
    pub middle: (ResidualBlock, AttentionBlock, ResidualBlock),
    pub upsamples: Vec<Upsample>,
    /// `head.0.gamma [C]`
    pub head_0: Tensor,
    pub head_2: Conv,
}

#[derive(Clone)]
pub struct VaeWeights {
    /// `conv2` (1×1×1, z_dim → z_dim) with the latent de-normalisation z·std + mean
    /// folded in at load time: W·(z·std + mean) + b = (W·diag(std))·z + (W·mean + b).
    pub conv2: Conv,
    pub decoder: Decoder,
}
