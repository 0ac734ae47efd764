//! `shaders/rope.wgsl`: 3-axis RoPE with host-computed f64 angle tables.
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use std::fmt;

/// Out of place: bindings `[x, table, y]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rope;

/// In place on the `y` view (`x_off`/`x_row` unused): bindings `[table, y]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RopeInPlace;

crate::params! {
    #[derive(Default)]
    pub struct Params {
        pub tokens: u32,
        pub heads: u32,
        pub d: u32,
        /// Pairs rotated by the frame index.
        pub c0: u32,
        /// Pairs rotated by the patch row, and again by the patch column.
        pub c1: u32,
        /// Patch-grid height and width.
        pub rows: u32,
        pub cols: u32,
        pub x_off: u32,
        pub x_row: u32,
        pub y_off: u32,
        pub y_row: u32,
        /// Table offsets (in pairs) of the row and column parts.
        pub row_table: u32,
        pub col_table: u32,
        pub _pad0: u32,
        pub _pad1: u32,
        pub _pad2: u32,
    }
}

/// Group sizes (frame, row, column) in pairs for head dim `d`: c − 2⌊c/3⌋, ⌊c/3⌋, ⌊c/3⌋.
pub fn groups(d: usize) -> (usize, usize) {
    let c = d / 2;
    (c - 2 * (c / 3), c / 3)
}

/// Pair j of a group of n pairs turns by pos·θ^(−j/n), θ = 10000.
fn angles(positions: std::ops::Range<usize>, n: usize, out: &mut Vec<f32>) {
    for pos in positions {
        for j in 0..n {
            let a = pos as f64 * 10000f64.powf(-(j as f64) / n as f64);
            out.extend([a.cos() as f32, a.sin() as f32]);
        }
    }
}

impl Params {
    /// Contiguous `[tokens, heads, d]` in and out, for a chunk of `frames` frames on a rows×cols patch grid.
    pub fn new(frames: usize, rows: usize, cols: usize, heads: usize, d: usize) -> Params {
        let (c0, c1) = groups(d);
        let tokens = frames * rows * cols;
        Params {
            tokens: tokens as u32,
            heads: heads as u32,
            d: d as u32,
            c0: c0 as u32,
            c1: c1 as u32,
            rows: rows as u32,
            cols: cols as u32,
            x_row: (heads * d) as u32,
            y_row: (heads * d) as u32,
            row_table: (frames * c0) as u32,
            col_table: (frames * c0 + rows * c1) as u32,
            ..Default::default()
        }
    }
}

/// The (cos, sin) table for frames `frame0 .. frame0 + frames` (flat f32 pairs).
pub fn table(frame0: usize, frames: usize, rows: usize, cols: usize, d: usize) -> Vec<f32> {
    let (c0, c1) = groups(d);
    let mut t = Vec::with_capacity(2 * (frames * c0 + (rows + cols) * c1));
    angles(frame0..frame0 + frames, c0, &mut t);
    angles(0..rows, c1, &mut t);
    angles(0..cols, c1, &mut t);
    t
}

/// The table that turns back what [`table`] turned: the same angles negated (cos
/// even, sin odd), so the same kernel recovers a key from its rotated copy.
pub fn inverse_table(frame0: usize, frames: usize, rows: usize, cols: usize, d: usize) -> Vec<f32> {
    let mut t = table(frame0, frames, rows, cols, d);
    t.iter_mut().skip(1).step_by(2).for_each(|sin| *sin = -*sin);
    t
}

fn workgroups(p: &Params) -> [u32; 3] {
    super::grid_1d((p.tokens * p.heads * (p.d / 2)).div_ceil(64))
}

impl fmt::Display for Rope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rope3d")
    }
}

impl fmt::Display for RopeInPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rope3d_inplace")
    }
}

impl Kernel for Rope {
    type Params = Params;

    fn wgsl(&self) -> String {
        expand("rope.wgsl", &Defines::new())
    }

    fn bindings(&self) -> Vec<Access> {
        vec![Access::Read, Access::Read, Access::ReadWrite]
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        workgroups(p)
    }
}

impl Kernel for RopeInPlace {
    type Params = Params;

    fn wgsl(&self) -> String {
        expand("rope.wgsl", &Defines::new().flag("IN_PLACE", true))
    }

    fn bindings(&self) -> Vec<Access> {
        vec![Access::Read, Access::ReadWrite]
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        workgroups(p)
    }
}

pub fn variants() -> Vec<(String, String)> {
    vec![(Rope.to_string(), Rope.wgsl()), (RopeInPlace.to_string(), RopeInPlace.wgsl())]
}

/// CPU reference: rotate in f64 with angles computed from scratch.
pub fn reference(p: &Params, frame0: usize, x: &[f32], y: &mut [f32]) {
    let (d, c0, c1) = (p.d as usize, p.c0 as usize, p.c1 as usize);
    let (rows, cols) = (p.rows as usize, p.cols as usize);
    for t in 0..p.tokens as usize {
        let coords = [frame0 + t / (rows * cols), (t / cols) % rows, t % cols];
        for h in 0..p.heads as usize {
            for j in 0..d / 2 {
                let (axis, jj, n) = if j < c0 {
                    (0, j, c0)
                } else if j < c0 + c1 {
                    (1, j - c0, c1)
                } else {
                    (2, j - c0 - c1, c1)
                };
                let ang = coords[axis] as f64 / 10000f64.powf(jj as f64 / n as f64);
                let s = p.x_off as usize + t * p.x_row as usize + h * d + 2 * j;
                let (a, b) = (x[s] as f64, x[s + 1] as f64);
                let o = p.y_off as usize + t * p.y_row as usize + h * d + 2 * j;
                y[o] = (a * ang.cos() - b * ang.sin()) as f32;
                y[o + 1] = (a * ang.sin() + b * ang.cos()) as f32;
            }
        }
    }
}
