//! The few-step flow-matching AR procedure of one chunk (MODEL.md A.5):
//! denoise from noise through the step list, re-noising between steps, then one
//! clean pass that leaves the chunk's keys/values in the cache.

/// Sinusoidal timestep embedding `[cos(t·ω), sin(t·ω)]`, ω_i = 10000^(−i/half),
/// computed in f64 as the official code does, one row per frame.
pub fn time_embedding(t: f64, frames: usize, freq_dim: usize) -> Vec<f32> {
    let half = freq_dim / 2;
    let row: Vec<f32> = (0..half)
        .map(|i| t * 10000f64.powf(-(i as f64) / half as f64))
        .map(|a| a.cos() as f32)
        .chain((0..half).map(|i| (t * 10000f64.powf(-(i as f64) / half as f64)).sin() as f32))
        .collect();
    row.repeat(frames)
}

/// What one model call is for: the cache bookkeeping differs between the first
/// pass of a chunk (append + evict), later passes (overwrite) and the clean pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    First,
    Again,
    Context,
}

/// A denoiser for one chunk at a time: the GPU generator, or a reference.
pub trait ChunkModel {
    type Error;
    /// Flow prediction for the chunk `x` (`[F, C, h, w]` flat) at timestep `t`.
    fn flow(&mut self, x: &[f32], t: f32, pass: Pass) -> Result<Vec<f32>, Self::Error>;
    /// The chunk is done: advance to the next chunk's frames.
    fn advance(&mut self) -> Result<(), Self::Error>;
}

/// Denoises one chunk. `renoise(s)` gives the Gaussian draw for moving into step s ≥ 1;
/// `record(s, flow, x0)` sees every step. Returns the chunk's clean latents.
pub fn denoise_chunk<M: ChunkModel>(
    model: &mut M,
    timesteps: &[f32],
    sigmas: &[f32],
    context_t: f32,
    noise: Vec<f32>,
    mut renoise: impl FnMut(usize) -> Vec<f32>,
    mut record: impl FnMut(usize, &[f32], &[f32]),
) -> Result<Vec<f32>, M::Error> {
    let mut x = noise;
    let mut x0 = Vec::new();
    for (s, (&t, &sigma)) in timesteps.iter().zip(sigmas).enumerate() {
        let v = model.flow(&x, t, if s == 0 { Pass::First } else { Pass::Again })?;
        x0 = x.iter().zip(&v).map(|(&x, &v)| x - sigma * v).collect();
        record(s, &v, &x0);
        if let Some(&next) = sigmas.get(s + 1) {
            let eps = renoise(s + 1);
            x = x0.iter().zip(&eps).map(|(&x0, &e)| (1.0 - next) * x0 + next * e).collect();
        }
    }
    model.flow(&x0, context_t, Pass::Context)?;
    model.advance()?;
    Ok(x0)
}
