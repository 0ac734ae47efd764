//! Row bands: past the last attention (the only op that mixes a whole frame) the
//! decoder holds every activation as horizontal bands of rows, one tensor each, so
//! that at video resolution no tensor exceeds a storage binding and, the graph run
//! depth first (`crate::schedule`), few rows of each layer are live at once. Channel
//! norms, SiLU, 1×1 and time-only convs work per pixel and run band by band; a 3×3 conv of
//! band j reads one row of each neighbour band, copied with the band into a halo'd
//! input (and likewise for its frame cache), so every output row is computed from
//! exactly the inputs of the unbanded conv. Frame caches are kept per band.
use super::graph::{geometry, Build};
use crate::error::{GraphError, Result};
use crate::ir::TensorId;
use runtime::kernels::copy;
use runtime::DType;

/// A channels-last activation `[F, H, W, C]` as bands `[F, rows_j, W, C]`, top to bottom.
#[derive(Clone)]
pub(super) struct Banded {
    pub parts: Vec<TensorId>,
}

/// `name` of band `j` of `k`: plain when the tensor is whole, so unbanded graphs keep their labels.
pub(super) fn band_name(name: &str, j: usize, k: usize) -> String {
    if k == 1 {
        name.to_string()
    } else {
        format!("{name}@{j}")
    }
}

impl Banded {
    pub fn whole(t: TensorId) -> Banded {
        Banded { parts: vec![t] }
    }

    /// The single tensor of an unbanded activation (attention needs the whole frame).
    pub fn single(&self, op: &str) -> Result<TensorId> {
        match self.parts[..] {
            [t] => Ok(t),
            _ => Err(GraphError::Shape { op: op.into(), message: "attention over a frame split into row bands".into() }),
        }
    }
}

impl Build<'_> {
    /// Splits a whole activation into `self.bands` bands of balanced row counts
    /// (a no-op if it is already banded or one band is asked for).
    pub(super) fn split(&mut self, name: &str, x: Banded) -> Result<Banded> {
        let k = self.bands;
        let [t] = x.parts[..] else { return Ok(x) };
        if k == 1 {
            return Ok(x);
        }
        let (f, h, w, c) = geometry(&self.g, t);
        let edge = |j: usize| j * h / k;
        let parts = (0..k)
            .map(|j| {
                let rows = edge(j + 1) - edge(j);
                let p = copy::Params::frame_rows(f, rows, w * c, (edge(j), h), (0, rows));
                self.g.copy_new(&band_name(name, j, k), t, &[f, rows, w, c], &p)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Banded { parts })
    }

    /// Band `j` of `parts` with the last row of the band above and the first of the
    /// band below (where they exist) → `(tensor, rows above)`.
    pub(super) fn with_halo(&mut self, name: &str, parts: &[TensorId], j: usize) -> Result<(TensorId, usize)> {
        let k = parts.len();
        if k == 1 {
            return Ok((parts[0], 0));
        }
        let (f, h, w, c) = geometry(&self.g, parts[j]);
        let (top, bottom) = (usize::from(j > 0), usize::from(j + 1 < k));
        let rows = top + h + bottom;
        let out = self.g.activation(name, &[f, rows, w, c], DType::F32);
        let row = w * c;
        if top == 1 {
            let above = geometry(&self.g, parts[j - 1]).1;
            self.g.copy_into(name, parts[j - 1], out, &copy::Params::frame_rows(f, 1, row, (above - 1, above), (0, rows)))?;
        }
        self.g.copy_into(name, parts[j], out, &copy::Params::frame_rows(f, h, row, (0, h), (top, rows)))?;
        if bottom == 1 {
            let below = geometry(&self.g, parts[j + 1]).1;
            self.g.copy_into(name, parts[j + 1], out, &copy::Params::frame_rows(f, 1, row, (0, below), (top + h, rows)))?;
        }
        Ok((out, top))
    }

    /// Channels-last bands → channel-first outputs `name@j` `[F, C, rows_j, W]`
    /// (plain `name` when whole), assembled on the host by [`join_planes`].
    pub(super) fn output_channels_first(&mut self, name: &str, x: &Banded) -> Result<()> {
        let k = x.parts.len();
        for (j, &t) in x.parts.iter().enumerate() {
            let (f, h, w, c) = geometry(&self.g, t);
            let label = band_name(name, j, k);
            let out = self.g.copy_new(&label, t, &[f, c, h, w], &copy::Params::to_channels_first(f, h * w, c))?;
            self.g.output(out, &label);
        }
        Ok(())
    }
}

/// Row bands of `planes` channel-first planes each (`[F, C, rows_j, W]`) → whole planes.
pub(super) fn join_planes(bands: &[Vec<f32>], planes: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(bands.iter().map(Vec::len).sum());
    for p in 0..planes {
        for b in bands {
            let n = b.len() / planes;
            out.extend_from_slice(&b[p * n..(p + 1) * n]);
        }
    }
    out
}
