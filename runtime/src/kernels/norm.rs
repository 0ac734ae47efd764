//! `shaders/norm.wgsl`: LayerNorm (plain, affine, adaLN-modulated), RMSNorm, the
//! L2 channel norm and softmax over rows, each optionally followed by SiLU.
use crate::device::{Capabilities, DeviceKind};
use crate::pipeline::{Access, Kernel};
use crate::shader::{expand, Defines};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stat {
    /// Subtract the mean, divide by the standard deviation.
    Layer,
    /// Divide by the root mean square.
    Rms,
    /// Divide by the L2 norm (F.normalize) and multiply by `gain`.
    L2,
    /// `softmax(gain · x)`; meant with [`Scale::None`] and no SiLU.
    Softmax,
}

/// How a row is spread over invocations (see norm.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Schedule {
    /// One invocation per row, no barriers.
    Serial,
    /// One workgroup per row, tree reduction in workgroup memory.
    Workgroup,
    /// One workgroup per row, subgroup reductions and a single barrier.
    Subgroup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scale {
    None,
    /// `· w`
    Weight,
    /// `· w + b`
    Affine,
    /// `· (1 + scale[f]) + shift[f]` from a modulation tensor.
    Modulated,
}

impl Schedule {
    pub const ALL: [Schedule; 3] = [Schedule::Serial, Schedule::Workgroup, Schedule::Subgroup];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Norm {
    pub stat: Stat,
    pub scale: Scale,
    pub silu: bool,
    pub schedule: Schedule,
}

impl Norm {
    /// The schedule for this adapter: CPU adapters never pay for barriers; GPUs
    /// reduce in subgroups when they have them.
    pub fn for_device(caps: &Capabilities, stat: Stat, scale: Scale, silu: bool) -> Norm {
        let schedule = if caps.device_type == DeviceKind::Cpu {
            Schedule::Serial
        } else if caps.subgroups {
            Schedule::Subgroup
        } else {
            Schedule::Workgroup
        };
        Norm { stat, scale, silu, schedule }
    }

    /// `softmax(scale · x)` over rows; `scale` goes in [`Params::gain`].
    pub fn softmax(caps: &Capabilities) -> Norm {
        Norm::for_device(caps, Stat::Softmax, Scale::None, false)
    }
}

crate::params! {
    #[derive(Default)]
    pub struct Params {
        pub rows: u32,
        pub d: u32,
        pub in_off: u32,
        pub in_row: u32,
        pub out_off: u32,
        pub out_row: u32,
        /// Rows sharing one modulation row (tokens per frame).
        pub frame_rows: u32,
        /// Stride between frames of the modulation tensor.
        pub mod_row: u32,
        pub shift_off: u32,
        pub scale_off: u32,
        pub eps: f32,
        pub gain: f32,
    }
}

impl Params {
    pub fn dense(rows: usize, d: usize, eps: f32) -> Params {
        Params { rows: rows as u32, d: d as u32, in_row: d as u32, out_row: d as u32, frame_rows: 1, eps, gain: 1.0, ..Default::default() }
    }
}

impl fmt::Display for Norm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stat = match self.stat {
            Stat::Layer => "layer",
            Stat::Rms => "rms",
            Stat::L2 => "l2",
            Stat::Softmax => "softmax",
        };
        let scale = match self.scale {
            Scale::None => "",
            Scale::Weight => "_w",
            Scale::Affine => "_affine",
            Scale::Modulated => "_mod",
        };
        let schedule = match self.schedule {
            Schedule::Serial => "_serial",
            Schedule::Workgroup => "",
            Schedule::Subgroup => "_sg",
        };
        write!(f, "norm_{stat}{scale}{}{schedule}", if self.silu { "_silu" } else { "" })
    }
}

impl Kernel for Norm {
    type Params = Params;

    fn wgsl(&self) -> String {
        let d = Defines::new()
            .flag("LAYER", self.stat == Stat::Layer)
            .flag("RMS", self.stat == Stat::Rms)
            .flag("L2", self.stat == Stat::L2)
            .flag("SOFTMAX", self.stat == Stat::Softmax)
            .flag("WEIGHT", matches!(self.scale, Scale::Weight | Scale::Affine))
            .flag("AFFINE", self.scale == Scale::Affine)
            .flag("MODULATED", self.scale == Scale::Modulated)
            .flag("SILU", self.silu)
            .flag("SERIAL", self.schedule == Schedule::Serial)
            .flag("SUBGROUP", self.schedule == Schedule::Subgroup)
            .set("B_Y", self.bindings().len());
        expand("norm.wgsl", &d)
    }

    fn bindings(&self) -> Vec<Access> {
        let extra = match self.scale {
            Scale::None => 0,
            Scale::Weight | Scale::Modulated => 1,
            Scale::Affine => 2,
        };
        let mut v = vec![Access::Read; 1 + extra];
        v.push(Access::ReadWrite);
        v
    }

    fn workgroups(&self, p: &Params) -> [u32; 3] {
        // The shader rebuilds the row from `num_workgroups`, so any 2D fold works.
        let groups = if self.schedule == Schedule::Serial { p.rows.div_ceil(64) } else { p.rows };
        super::grid_1d(groups)
    }
}

pub fn variants() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for schedule in Schedule::ALL {
        for stat in [Stat::Layer, Stat::Rms, Stat::L2] {
            for scale in [Scale::None, Scale::Weight, Scale::Affine, Scale::Modulated] {
                for silu in [false, true] {
                    v.push(Norm { stat, scale, silu, schedule });
                }
            }
        }
        v.push(Norm { stat: Stat::Softmax, scale: Scale::None, silu: false, schedule });
    }
    v.into_iter().map(|k| (k.to_string(), k.wgsl())).collect()
}

/// CPU reference (f64); `a` and `b` are the weight/bias or the modulation tensor.
pub fn reference(k: &Norm, p: &Params, x: &[f32], a: &[f32], b: &[f32], y: &mut [f32]) {
    let d = p.d as usize;
    for r in 0..p.rows as usize {
        let row = &x[p.in_off as usize + r * p.in_row as usize..][..d];
        let n = d as f64;
        let (eps, gain) = (p.eps as f64, p.gain as f64);
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
        let sq = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let max = row.iter().map(|&v| gain * v as f64).fold(f64::NEG_INFINITY, f64::max);
        let exps = row.iter().map(|&v| (gain * v as f64 - max).exp()).sum::<f64>();
        let f = r / p.frame_rows.max(1) as usize;
        for c in 0..d {
            let x = row[c] as f64;
            let mut v = match k.stat {
                Stat::Layer => (x - mean) / (var + eps).sqrt(),
                Stat::Rms => x / (sq / n + eps).sqrt(),
                Stat::L2 => x * gain / sq.sqrt().max(eps),
                Stat::Softmax => (gain * x - max).exp() / exps,
            };
            match k.scale {
                Scale::None => {}
                Scale::Weight => v *= a[c] as f64,
                Scale::Affine => v = v * a[c] as f64 + b[c] as f64,
                Scale::Modulated => {
                    let m = f * p.mod_row as usize;
                    v = v * (1.0 + a[m + p.scale_off as usize + c] as f64) + a[m + p.shift_off as usize + c] as f64;
                }
            }
            if k.silu {
                v /= 1.0 + (-v).exp();
            }
            y[p.out_off as usize + r * p.out_row as usize + c] = v as f32;
        }
    }
}
