//! `nn.Linear` on the device, for every model. The weight is stored transposed,
//! `[in, out]` (as the matmul reads it), and cut into column blocks when it does not
//! fit one storage binding: umT5-XXL's FFN in f32 (160 MiB) or Wan-14B's in bf16
//! (141 MiB) on an adapter with 128 MiB bindings. The graph runs one matmul per block
//! into the matching columns of one output, so models never see the split.
use crate::builder::Builder;
use crate::error::Result;
use crate::ir::TensorId;
use crate::ops::Epilogue;
use runtime::kernels::matmul;
use runtime::{DType, Gpu, Tensor};

/// `weight`: the `[in, out_b]` column blocks, left to right; `bias`: `[out]`.
#[derive(Clone)]
pub struct Linear {
    pub weight: Vec<Tensor>,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Uploads a PyTorch `[out, in]` weight (`key` names it in errors and profiles).
    pub fn upload(gpu: &Gpu, key: &str, out: usize, inp: usize, dtype: DType, w: &[f32], bias: Option<Tensor>) -> Result<Linear> {
        let t = matmul::transpose(w, out, inp);
        let blocks = matmul::column_blocks(out, inp, 1, dtype, gpu.max_binding())?;
        let weight = if blocks.len() == 1 {
            vec![gpu.upload(key, &[inp, out], dtype, &t)?]
        } else {
            let block = |c: &std::ops::Range<usize>| -> Vec<f32> { t.chunks(out).flat_map(|row| &row[c.clone()]).copied().collect() };
            blocks
                .iter()
                .map(|c| gpu.upload(&format!("{key}[{}..{}]", c.start, c.end), &[inp, c.len()], dtype, &block(c)))
                .collect::<std::result::Result<_, _>>()?
        };
        Ok(Linear { weight, bias })
    }

    /// `epilogue(x·Wᵀ + b)` as graph ops named `name`.
    pub fn forward(&self, g: &mut Builder, name: &str, x: TensorId, epi: Epilogue) -> Result<TensorId> {
        let blocks: Vec<TensorId> = match self.weight.as_slice() {
            [w] => vec![g.param(&format!("{name}.weight"), w)],
            ws => ws.iter().enumerate().map(|(i, w)| g.param(&format!("{name}.weight[{i}]"), w)).collect(),
        };
        let b = self.bias.as_ref().map(|b| g.param(&format!("{name}.bias"), b));
        g.linear(name, x, &blocks, b, epi)
    }
}
