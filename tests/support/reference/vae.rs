//! f64 reference of the Wan VAE decoder, written from ../shared/spec (TEXT_VAE.md
//! C.2) and FORMAT.md as they read: channel-first volumes `[C, T, H, W]`, the whole
//! sequence at once, causal convs padded with zero frames in time, and the
//! temporal upsample taking frame 0 through untouched while frames 1.. go through
//! the time conv as a sequence of their own (so frame 0 counts as zero there).
// Index loops on purpose: they read like the formulas.
#![allow(clippy::needless_range_loop)]
use std::collections::BTreeMap;
use weights::VaeConfig;

/// A channel-first volume.
#[derive(Clone)]
pub struct Vol {
    pub c: usize,
    pub t: usize,
    pub h: usize,
    pub w: usize,
    pub d: Vec<f64>,
}

impl Vol {
    fn zeros(c: usize, t: usize, h: usize, w: usize) -> Vol {
        Vol { c, t, h, w, d: vec![0.0; c * t * h * w] }
    }

    fn at(&self, c: usize, t: usize, y: usize, x: usize) -> f64 {
        self.d[((c * self.t + t) * self.h + y) * self.w + x]
    }

    fn idx(&self, c: usize, t: usize, y: usize, x: usize) -> usize {
        ((c * self.t + t) * self.h + y) * self.w + x
    }

    /// Frames `range` of every channel.
    fn frames(&self, from: usize, to: usize) -> Vol {
        let mut o = Vol::zeros(self.c, to - from, self.h, self.w);
        for c in 0..self.c {
            for t in from..to {
                for y in 0..self.h {
                    for x in 0..self.w {
                        let i = o.idx(c, t - from, y, x);
                        o.d[i] = self.at(c, t, y, x);
                    }
                }
            }
        }
        o
    }
}

pub struct Reference {
    pub cfg: VaeConfig,
    w: BTreeMap<String, Vec<f64>>,
}

impl Reference {
    pub fn new(cfg: VaeConfig, weights: BTreeMap<String, Vec<f32>>) -> Reference {
        let w = weights.into_iter().map(|(k, v)| (k, v.into_iter().map(f64::from).collect())).collect();
        Reference { cfg, w }
    }

    fn get(&self, key: &str) -> &[f64] {
        self.w.get(key).unwrap_or_else(|| panic!("reference: no weight {key}"))
    }

    /// Causal conv `key` with kernel (kt, kh, kw): kt−1 zero frames in front, spatial zero padding.
    fn conv(&self, key: &str, x: &Vol, cout: usize, (kt, kh, kw): (usize, usize, usize)) -> Vol {
        let wt = self.get(&format!("{key}.weight"));
        let b = self.get(&format!("{key}.bias"));
        let mut o = Vol::zeros(cout, x.t, x.h, x.w);
        for co in 0..cout {
            for t in 0..x.t {
                for y in 0..x.h {
                    for xx in 0..x.w {
                        let mut s = b[co];
                        for ci in 0..x.c {
                            for dt in 0..kt {
                                let Some(ti) = (t + dt).checked_sub(kt - 1) else { continue };
                                for dy in 0..kh {
                                    let yy = y as isize + dy as isize - (kh / 2) as isize;
                                    if yy < 0 || yy >= x.h as isize {
                                        continue;
                                    }
                                    for dx in 0..kw {
                                        let xs = xx as isize + dx as isize - (kw / 2) as isize;
                                        if xs < 0 || xs >= x.w as isize {
                                            continue;
                                        }
                                        let wi = (((co * x.c + ci) * kt + dt) * kh + dy) * kw + dx;
                                        s += wt[wi] * x.at(ci, ti, yy as usize, xs as usize);
                                    }
                                }
                            }
                        }
                        let i = o.idx(co, t, y, xx);
                        o.d[i] = s;
                    }
                }
            }
        }
        o
    }

    /// RMS_norm over channels: x / max(‖x‖, 1e-12) · √C · gamma.
    fn norm(&self, key: &str, x: &Vol) -> Vol {
        let g = self.get(key);
        let mut o = x.clone();
        for t in 0..x.t {
            for y in 0..x.h {
                for xx in 0..x.w {
                    let n = (0..x.c).map(|c| x.at(c, t, y, xx).powi(2)).sum::<f64>().sqrt().max(1e-12);
                    for c in 0..x.c {
                        let i = x.idx(c, t, y, xx);
                        o.d[i] = x.d[i] / n * (x.c as f64).sqrt() * g[c];
                    }
                }
            }
        }
        o
    }

    fn silu(mut x: Vol) -> Vol {
        x.d.iter_mut().for_each(|v| *v /= 1.0 + (-*v).exp());
        x
    }

    fn residual(&self, key: &str, x: &Vol, cout: usize) -> Vol {
        let h = if x.c != cout { self.conv(&format!("{key}.shortcut"), x, cout, (1, 1, 1)) } else { x.clone() };
        let a = Self::silu(self.norm(&format!("{key}.residual.0.gamma"), x));
        let a = self.conv(&format!("{key}.residual.2"), &a, cout, (3, 3, 3));
        let a = Self::silu(self.norm(&format!("{key}.residual.3.gamma"), &a));
        let mut a = self.conv(&format!("{key}.residual.6"), &a, cout, (3, 3, 3));
        a.d.iter_mut().zip(&h.d).for_each(|(v, r)| *v += r);
        a
    }

    /// Per frame: softmax(q·kᵀ/√C)·v over the frame's pixels, 1×1 projections, + x.
    fn attention(&self, key: &str, x: &Vol) -> Vol {
        let c = x.c;
        let xn = self.norm(&format!("{key}.norm.gamma"), x);
        let (wq, bq) = (self.get(&format!("{key}.to_qkv.weight")), self.get(&format!("{key}.to_qkv.bias")));
        let (wp, bp) = (self.get(&format!("{key}.proj.weight")), self.get(&format!("{key}.proj.bias")));
        let p = x.h * x.w;
        let mut out = x.clone();
        for t in 0..x.t {
            let pix = |i: usize, ch: usize| xn.at(ch, t, i / x.w, i % x.w);
            // qkv[i][o] for o in 0..3C: q | k | v.
            let qkv: Vec<Vec<f64>> =
                (0..p).map(|i| (0..3 * c).map(|o| bq[o] + (0..c).map(|ch| wq[o * c + ch] * pix(i, ch)).sum::<f64>()).collect()).collect();
            for i in 0..p {
                let s: Vec<f64> = (0..p).map(|j| (0..c).map(|ch| qkv[i][ch] * qkv[j][c + ch]).sum::<f64>() / (c as f64).sqrt()).collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
                let z: f64 = e.iter().sum();
                let a: Vec<f64> = (0..c).map(|ch| (0..p).map(|j| e[j] * qkv[j][2 * c + ch]).sum::<f64>() / z).collect();
                for o in 0..c {
                    let idx = out.idx(o, t, i / x.w, i % x.w);
                    out.d[idx] += bp[o] + (0..c).map(|ch| wp[o * c + ch] * a[ch]).sum::<f64>();
                }
            }
        }
        out
    }

    /// Time conv of frames 1.. (frame 0 passes and is never looked back at), 2C channels
    /// split into frames 2f, 2f+1; then nearest 2× and the 3×3 conv to C/2.
    fn resample(&self, key: &str, x: &Vol, temporal: bool) -> Vol {
        let c = x.c;
        let x = if temporal && x.t > 1 {
            let rest = self.conv(&format!("{key}.time_conv"), &x.frames(1, x.t), 2 * c, (3, 1, 1));
            let mut o = Vol::zeros(c, 1 + 2 * rest.t, x.h, x.w);
            for ch in 0..c {
                for y in 0..x.h {
                    for xx in 0..x.w {
                        let i = o.idx(ch, 0, y, xx);
                        o.d[i] = x.at(ch, 0, y, xx);
                        for f in 0..rest.t {
                            for k in 0..2 {
                                let i = o.idx(ch, 1 + 2 * f + k, y, xx);
                                o.d[i] = rest.at(k * c + ch, f, y, xx);
                            }
                        }
                    }
                }
            }
            o
        } else {
            x.clone()
        };
        let mut up = Vol::zeros(c, x.t, 2 * x.h, 2 * x.w);
        for ch in 0..c {
            for t in 0..x.t {
                for y in 0..up.h {
                    for xx in 0..up.w {
                        let i = up.idx(ch, t, y, xx);
                        up.d[i] = x.at(ch, t, y / 2, xx / 2);
                    }
                }
            }
        }
        self.conv(&format!("{key}.resample.1"), &up, c / 2, (1, 3, 3))
    }

    /// Latents `[F, z, h, w]` (generator scale) → video `[1 + 4(F−1), 3, 8h, 8w]` in [−1, 1].
    pub fn decode(&self, latents: &[f32], frames: usize, h: usize, w: usize) -> Vec<f32> {
        let cfg = &self.cfg;
        let z = cfg.z_dim;
        let mut x = Vol::zeros(z, frames, h, w);
        for t in 0..frames {
            for c in 0..z {
                for p in 0..h * w {
                    let i = x.idx(c, t, p / w, p % w);
                    x.d[i] = latents[(t * z + c) * h * w + p] as f64 * cfg.latent_std[c] as f64 + cfg.latent_mean[c] as f64;
                }
            }
        }
        let x = self.conv("conv2", &x, z, (1, 1, 1));
        let m = &cfg.dim_mult;
        let dims: Vec<usize> = std::iter::once(m[m.len() - 1]).chain(m.iter().rev().copied()).map(|u| u * cfg.dim).collect();
        let x = self.conv("decoder.conv1", &x, dims[0], (3, 3, 3));
        let x = self.residual("decoder.middle.0", &x, dims[0]);
        let x = self.attention("decoder.middle.1", &x);
        let mut x = self.residual("decoder.middle.2", &x, dims[0]);
        let temporal: Vec<bool> = cfg.temperal_downsample.iter().rev().copied().collect();
        let mut scale = 1.0 / 2f64.powi(m.len() as i32 - 2);
        let mut n = 0;
        for i in 0..m.len() {
            let out = dims[i + 1];
            for _ in 0..=cfg.num_res_blocks {
                x = self.residual(&format!("decoder.upsamples.{n}"), &x, out);
                n += 1;
                if cfg.attn_scales.contains(&scale) {
                    x = self.attention(&format!("decoder.upsamples.{n}"), &x);
                    n += 1;
                }
            }
            if i + 1 < m.len() {
                x = self.resample(&format!("decoder.upsamples.{n}"), &x, temporal[i]);
                n += 1;
                scale *= 2.0;
            }
        }
        let x = Self::silu(self.norm("decoder.head.0.gamma", &x));
        let x = self.conv("decoder.head.2", &x, 3, (3, 3, 3));
        // [3, T, H, W] → [T, 3, H, W], clamped.
        let mut out = Vec::with_capacity(x.d.len());
        for t in 0..x.t {
            for c in 0..3 {
                for y in 0..x.h {
                    for xx in 0..x.w {
                        out.push(x.at(c, t, y, xx).clamp(-1.0, 1.0) as f32);
                    }
                }
            }
        }
        out
    }
}
