//! `nn.Linear` on the device, for every model. The weight is stored transposed,
//! `[in, out]` (as the matmul reads it), and cut into column blocks when it does not
//! fit one storage binding: umT5-XXL's FFN in f32 (160 MiB) or Wan-14B's in bf16
//! (141 MiB) on an adapter with 128 MiB bindings. The graph runs one matmul per block
//! into the matching columns of one output, so models never see the split.
//!
//! Activations get the same treatment along rows in [`feed_forward`]: the hidden of
//! Wan-1.3B's FFN on a 3-frame 480×832 chunk is 4680 × 8960 f32 = 160 MiB, so it is
//! made and consumed in row blocks that each fit a binding.
use crate::builder::Builder;
use crate::error::{GraphError, Result};
use crate::ir::TensorId;
use crate::ops::{Epilogue, RowBlock};
use runtime::kernels::matmul;
use runtime::{DType, Gpu, RuntimeError, Tensor};
use weights::HostTensor;

/// `weight`: the `[in, out_b]` column blocks, left to right; `bias`: `[out]`.
#[derive(Clone)]
pub struct Linear {
    pub weight: Vec<Tensor>,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// Uploads a PyTorch `[out, in]` weight (`key` names it in errors and profiles).
    pub fn upload(gpu: &Gpu, key: &str, out: usize, inp: usize, dtype: DType, w: &[f32], bias: Option<Tensor>) -> Result<Linear> {
        let weight = blocks(gpu, key, out, inp, dtype, w, |label, shape, data| gpu.upload(label, shape, dtype, data))?;
        Ok(Linear { weight, bias })
    }

    /// [`Linear::upload`] from a checkpoint's tensor: a 16-bit weight uploaded in its own
    /// dtype goes as it is stored, bits transposed, with no pass through f32 (for
    /// umT5-XXL's 5.7 B weights, read again at every prompt, that is most of the host's
    /// work); any other pair is converted.
    pub fn upload_host(gpu: &Gpu, key: &str, out: usize, inp: usize, dtype: DType, w: &HostTensor, bias: Option<Tensor>) -> Result<Linear> {
        let same = matches!((w.dtype, dtype), (weights::DType::BF16, DType::BF16) | (weights::DType::F16, DType::F16));
        if !same {
            return Linear::upload(gpu, key, out, inp, dtype, &w.to_f32(), bias);
        }
        // Moved as whole 2-byte units and staged as the same bytes: byte order never matters.
        let bits: std::borrow::Cow<[u16]> = match bytemuck::try_cast_slice(&w.data) {
            Ok(aligned) => aligned.into(),
            Err(_) => bytemuck::pod_collect_to_vec(&w.data).into(),
        };
        let weight = blocks(gpu, key, out, inp, dtype, &bits, |label, shape, data| gpu.upload_bits(label, shape, dtype, data))?;
        Ok(Linear { weight, bias })
    }

    /// `epilogue(x·Wᵀ + b)` as graph ops named `name`.
    pub fn forward(&self, g: &mut Builder, name: &str, x: TensorId, epi: Epilogue) -> Result<TensorId> {
        let (w, b) = self.bind(g, name);
        g.linear(name, x, &w, b, epi)
    }

    /// The weight blocks and bias as graph params.
    fn bind(&self, g: &mut Builder, name: &str) -> (Vec<TensorId>, Option<TensorId>) {
        let blocks = match self.weight.as_slice() {
            [w] => vec![g.param(&format!("{name}.weight"), w)],
            ws => ws.iter().enumerate().map(|(i, w)| g.param(&format!("{name}.weight[{i}]"), w)).collect(),
        };
        (blocks, self.bias.as_ref().map(|b| g.param(&format!("{name}.bias"), b)))
    }

    /// The weight's dtype (the model's `--dtype` for matmul weights).
    pub fn dtype(&self) -> DType {
        self.weight[0].dtype
    }

    fn out_features(&self) -> usize {
        self.weight.iter().map(|w| w.shape[1]).sum()
    }
}

/// `w` (`[out, in]`) transposed to `[in, out]` and uploaded by `put` in the column
/// blocks that fit one storage binding of `gpu`.
fn blocks<T: Copy + Default>(
    gpu: &Gpu,
    key: &str,
    out: usize,
    inp: usize,
    dtype: DType,
    w: &[T],
    put: impl Fn(&str, &[usize], &[T]) -> runtime::Result<Tensor>,
) -> Result<Vec<Tensor>> {
    if w.len() != out * inp {
        return Err(GraphError::input(key, format!("{} values for an [{out}, {inp}] weight", w.len())));
    }
    let t = matmul::transpose(w, out, inp);
    let cols = matmul::column_blocks(out, inp, 1, dtype, gpu.max_binding())?;
    if cols.len() == 1 {
        return Ok(vec![put(key, &[inp, out], &t)?]);
    }
    let block = |c: &std::ops::Range<usize>| -> Vec<T> { t.chunks(out).flat_map(|row| &row[c.clone()]).copied().collect() };
    Ok(cols.iter().map(|c| put(&format!("{key}[{}..{}]", c.start, c.end), &[inp, c.len()], &block(c))).collect::<runtime::Result<_>>()?)
}

/// Row blocks `(first row, rows)` of an `[m, width]` f32 activation, each at most
/// `limit` bytes: one when it fits, else the fewest of balanced sizes.
pub fn row_blocks(what: &str, m: usize, width: usize, limit: u64) -> Result<Vec<(usize, usize)>> {
    let row = (width * DType::F32.size()) as u64;
    let most = (limit / row.max(1)) as usize;
    if most == 0 {
        return Err(GraphError::Runtime(RuntimeError::LimitExceeded {
            what: format!("one row of {what} [{m}, {width}] f32"),
            requested: row,
            limit,
            hint: "use an adapter with larger storage bindings".into(),
        }));
    }
    let k = m.div_ceil(most).max(1);
    Ok((0..k).map(|j| (j * m / k, (j + 1) * m / k - j * m / k)).collect())
}

/// `down(act(up(x)))` with `down`'s epilogue `epi` (names `[up, down]`). When the
/// hidden `[m, up.out]` exceeds the builder's split size it is made in row blocks
/// (`{up}@j`): per block, `up` reads its rows of `x` and `down` writes the same
/// rows of the output, entering the residual and gate there too.
pub fn feed_forward(
    g: &mut Builder,
    names: [&str; 2],
    x: TensorId,
    layers: [&Linear; 2],
    act: Epilogue,
    epi: Epilogue,
) -> Result<TensorId> {
    let m = g.shape(x).iter().rev().skip(1).product::<usize>();
    let hidden = layers[0].out_features();
    let blocks = row_blocks(names[0], m, hidden, g.split_bytes())?;
    if blocks.len() == 1 {
        let h = layers[0].forward(g, names[0], x, act)?;
        return layers[1].forward(g, names[1], h, epi);
    }
    let ((w0, b0), (w1, b1)) = (layers[0].bind(g, names[0]), layers[1].bind(g, names[1]));
    let mut shape = g.shape(x).to_vec();
    *shape.last_mut().expect("rank ≥ 1") = layers[1].out_features();
    let y = g.activation(names[1], &shape, DType::F32);
    for (j, &(start, rows)) in blocks.iter().enumerate() {
        let h = g.activation(&format!("{}@{j}", names[0]), &[rows, hidden], DType::F32);
        g.linear_into(names[0], x, &w0, b0, act, h, RowBlock { rows, x_row0: start, y_row0: 0 })?;
        g.linear_into(names[1], h, &w1, b1, epi, y, RowBlock { rows, x_row0: 0, y_row0: start })?;
    }
    Ok(y)
}
