//! f64 reference of the causal DiT with window, sinks and the VideoSSM memory,
//! written from ../shared/spec as the spec reads: a literal list of cached tokens
//! (append, evict the oldest non-sink ones, fold them token by token into S),
//! dense attention, no kernels. The GPU generator is tested against it.
use runtime::kernels::gelu_tanh;
use std::collections::BTreeMap;

pub struct Config {
    pub dim: usize,
    pub heads: usize,
    pub layers: usize,
    pub ffn: usize,
    pub freq_dim: usize,
    pub text_dim: usize,
    pub text_len: usize,
    pub channels: usize,
    pub eps: f64,
    /// Cache size in tokens (None = unbounded) and sink tokens.
    pub capacity: Option<usize>,
    pub sink: usize,
    /// Latent frames per chunk and latent height/width.
    pub frames: usize,
    pub height: usize,
    pub width: usize,
}

type Weights = BTreeMap<String, Vec<f64>>;

/// One cached token of one block: post-RoPE key, value, and the memory's cached values.
#[derive(Clone)]
struct Entry {
    k: Vec<f64>,
    v: Vec<f64>,
    khat: Vec<f64>,
    beta: Vec<f64>,
    decay: Vec<f64>,
}

pub struct Reference {
    pub cfg: Config,
    w: Weights,
    memory: bool,
    cache: Vec<Vec<Entry>>,
    /// `S [H][d·d]` per block.
    state: Vec<Vec<Vec<f64>>>,
    ctx: Vec<(Vec<f64>, Vec<f64>)>,
    /// Cached tokens ever written (to know which are sinks).
    written: usize,
    pub frame0: usize,
    /// (first token, first frame, clean latents) of committed chunks, for prompt switches.
    history: Vec<(usize, usize, Vec<f32>)>,
    clean: Vec<f32>,
}

/// Which cache entries a call writes.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// A chunk's first call: evict, then append.
    First,
    /// Later calls of the chunk: overwrite the newest entries.
    Again,
    /// Re-running committed tokens `g0..` under a new prompt, seeing only entries up to them.
    Recache(usize),
}

fn matvec_rows(x: &[f64], rows: usize, w: &[f64], b: Option<&[f64]>, n: usize) -> Vec<f64> {
    let k = x.len() / rows;
    let mut y = vec![0.0; rows * n];
    for r in 0..rows {
        for o in 0..n {
            let mut s = b.map_or(0.0, |b| b[o]);
            for i in 0..k {
                s += x[r * k + i] * w[o * k + i];
            }
            y[r * n + o] = s;
        }
    }
    y
}

fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Reference {
    /// `weights` by checkpoint key; the memory is on when `memory.*` keys exist.
    pub fn new(cfg: Config, weights: BTreeMap<String, Vec<f32>>) -> Reference {
        let w: Weights = weights.into_iter().map(|(k, v)| (k, v.into_iter().map(f64::from).collect())).collect();
        let memory = w.contains_key("blocks.0.self_attn.memory.A_log");
        let d = cfg.dim / cfg.heads;
        Reference {
            cache: vec![Vec::new(); cfg.layers],
            state: vec![vec![vec![0.0; d * d]; cfg.heads]; cfg.layers],
            ctx: Vec::new(),
            written: 0,
            frame0: 0,
            history: Vec::new(),
            clean: Vec::new(),
            cfg,
            w,
            memory,
        }
    }

    fn lin(&self, x: &[f64], rows: usize, key: &str) -> Vec<f64> {
        let b = &self.w[&format!("{key}.bias")];
        matvec_rows(x, rows, &self.w[&format!("{key}.weight")], Some(b), b.len())
    }

    fn norm(&self, x: &mut [f64], rows: usize, rms: bool, weight: Option<&[f64]>, bias: Option<&[f64]>) {
        let d = x.len() / rows;
        for row in x.chunks_mut(d) {
            let mean = if rms { 0.0 } else { row.iter().sum::<f64>() / d as f64 };
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
            let inv = 1.0 / (var + self.cfg.eps).sqrt();
            for (c, v) in row.iter_mut().enumerate() {
                *v = (*v - mean) * inv * weight.map_or(1.0, |w| w[c]) + bias.map_or(0.0, |b| b[c]);
            }
        }
    }

    /// Cross-attention keys/values of a prompt's text embeddings.
    pub fn set_context(&mut self, context: &[f32]) {
        let c = &self.cfg;
        let ctx: Vec<f64> = context.iter().map(|&v| v as f64).collect();
        let mut h = self.lin(&ctx, c.text_len, "text_embedding.0");
        h.iter_mut().for_each(|v| *v = gelu_tanh(*v));
        let e = self.lin(&h, c.text_len, "text_embedding.2");
        self.ctx = (0..c.layers)
            .map(|n| {
                let p = format!("blocks.{n}.cross_attn");
                let mut k = self.lin(&e, c.text_len, &format!("{p}.k"));
                self.norm(&mut k, c.text_len, true, Some(&self.w[&format!("{p}.norm_k.weight")]), None);
                (k, self.lin(&e, c.text_len, &format!("{p}.v")))
            })
            .collect();
    }

    fn rope(&self, x: &mut [f64], tokens: usize) {
        let (hd, rows, cols) = (self.cfg.dim / self.cfg.heads, self.cfg.height / 2, self.cfg.width / 2);
        let c = hd / 2;
        let (c0, c1) = (c - 2 * (c / 3), c / 3);
        for t in 0..tokens {
            let pos = [self.frame0 + t / (rows * cols), (t / cols) % rows, t % cols];
            for h in 0..self.cfg.heads {
                for j in 0..c {
                    let (axis, jj, n) = if j < c0 {
                        (0, j, c0)
                    } else if j < c0 + c1 {
                        (1, j - c0, c1)
                    } else {
                        (2, j - c0 - c1, c1)
                    };
                    let a = pos[axis] as f64 * 10000f64.powf(-(jj as f64) / n as f64);
                    let i = t * self.cfg.dim + h * hd + 2 * j;
                    let (re, im) = (x[i], x[i + 1]);
                    x[i] = re * a.cos() - im * a.sin();
                    x[i + 1] = re * a.sin() + im * a.cos();
                }
            }
        }
    }

    /// Softmax attention of `q [tq, D]` over keys/values given as rows.
    fn attend(&self, q: &[f64], keys: &[&[f64]], values: &[&[f64]]) -> Vec<f64> {
        let (dim, heads) = (self.cfg.dim, self.cfg.heads);
        let hd = dim / heads;
        let tq = q.len() / dim;
        let mut o = vec![0.0; q.len()];
        for t in 0..tq {
            for h in 0..heads {
                let qh = &q[t * dim + h * hd..][..hd];
                let s: Vec<f64> =
                    keys.iter().map(|k| qh.iter().zip(&k[h * hd..][..hd]).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt()).collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for (w, v) in e.iter().zip(values) {
                    for c in 0..hd {
                        o[t * dim + h * hd + c] += w / z * v[h * hd + c];
                    }
                }
            }
        }
        o
    }

    fn l2(&self, x: &[f64], scale: f64) -> Vec<f64> {
        let hd = self.cfg.dim / self.cfg.heads;
        x.chunks(hd)
            .flat_map(|r| {
                let n = r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                r.iter().map(move |v| v / n * scale)
            })
            .collect()
    }

    fn fold(&mut self, n: usize, e: &Entry) {
        let hd = self.cfg.dim / self.cfg.heads;
        for h in 0..self.cfg.heads {
            let s = &mut self.state[n][h];
            for i in 0..hd {
                for j in 0..hd {
                    s[i * hd + j] = e.decay[h] * s[i * hd + j] + e.beta[h] * e.v[h * hd + i] * e.khat[h * hd + j];
                }
            }
        }
    }

    /// Global token index of each cache entry, in cache order.
    fn globals(&self) -> Vec<usize> {
        let len = self.cache[0].len();
        let sinks = self.cfg.sink.min(self.written).min(len);
        (0..sinks).chain(self.written - (len - sinks)..self.written).collect()
    }

    /// Switches the prompt: new cross-attention k/v, then every fully cached chunk is
    /// re-run at the context timestep, oldest first, seeing the entries up to itself.
    pub fn switch_prompt(&mut self, context: &[f32], context_t: f64) {
        self.set_context(context);
        let n = self.cfg.frames * (self.cfg.height / 2) * (self.cfg.width / 2);
        let frame0 = self.frame0;
        for (g0, f0, x) in self.history.clone() {
            let g = self.globals();
            if (g0..g0 + n).all(|t| g.contains(&t)) {
                self.frame0 = f0;
                self.forward(&x, context_t, Mode::Recache(g0));
            }
        }
        self.frame0 = frame0;
    }

    /// The flow prediction for chunk `x [F, C, h, w]` at timestep `t`; `first`
    /// marks a chunk's first call (append + evict), later calls overwrite.
    pub fn flow(&mut self, x: &[f32], t: f64, first: bool) -> Vec<f32> {
        self.clean = x.to_vec();
        self.forward(x, t, if first { Mode::First } else { Mode::Again })
    }

    fn forward(&mut self, x: &[f32], t: f64, mode: Mode) -> Vec<f32> {
        let first = mode == Mode::First;
        let c = &self.cfg;
        let (dim, heads, f, ch) = (c.dim, c.heads, c.frames, c.channels);
        let (hh, ww) = (c.height, c.width);
        let (rows, cols) = (hh / 2, ww / 2);
        let per = rows * cols;
        let n = f * per;
        let hd = dim / heads;
        // Patch embedding over (C, ph, pw)-flattened patches.
        let mut tok = vec![0.0; n * ch * 4];
        for fi in 0..f {
            for r in 0..rows {
                for q in 0..cols {
                    for ci in 0..ch {
                        for (pi, (dy, dx)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
                            tok[((fi * rows + r) * cols + q) * ch * 4 + ci * 4 + pi] =
                                x[((fi * ch + ci) * hh + 2 * r + dy) * ww + 2 * q + dx] as f64;
                        }
                    }
                }
            }
        }
        let mut hx = self.lin(&tok, n, "patch_embedding");
        let half = c.freq_dim / 2;
        let sin: Vec<f64> = (0..f)
            .flat_map(|_| {
                let a: Vec<f64> = (0..half).map(|i| t * 10000f64.powf(-(i as f64) / half as f64)).collect();
                a.iter().map(|v| v.cos()).chain(a.iter().map(|v| v.sin())).collect::<Vec<_>>()
            })
            .collect();
        let mut e = self.lin(&sin, f, "time_embedding.0");
        e.iter_mut().for_each(|v| *v = silu(*v));
        let e = self.lin(&e, f, "time_embedding.2");
        let es: Vec<f64> = e.iter().map(|&v| silu(v)).collect();
        let e0 = self.lin(&es, f, "time_projection.1");
        if first {
            // Make room: evict the oldest non-sink tokens of every block (folding them into S).
            let overflow = self.cfg.capacity.map_or(0, |cap| (self.cache[0].len() + n).saturating_sub(cap));
            let keep = self.cfg.sink.min(self.written);
            for b in 0..self.cfg.layers {
                let gone: Vec<Entry> = self.cache[b].drain(keep..keep + overflow).collect();
                if self.memory {
                    for g in &gone {
                        self.fold(b, g);
                    }
                }
            }
            self.written += n;
        }
        for b in 0..self.cfg.layers {
            let p = format!("blocks.{b}");
            let m: Vec<f64> = (0..f)
                .flat_map(|fi| (0..6 * dim).map(move |i| (fi, i)))
                .map(|(fi, i)| e0[fi * 6 * dim + i] + self.w[&format!("{p}.modulation")][i])
                .collect();
            let md = |tok: usize, slot: usize, ch: usize| m[(tok / per) * 6 * dim + slot * dim + ch];
            let modulated = |this: &Self, x: &[f64], shift: usize, scale: usize| {
                let mut y = x.to_vec();
                this.norm(&mut y, n, false, None, None);
                for t in 0..n {
                    for ci in 0..dim {
                        y[t * dim + ci] = y[t * dim + ci] * (1.0 + md(t, scale, ci)) + md(t, shift, ci);
                    }
                }
                y
            };
            let a = format!("{p}.self_attn");
            let xn = modulated(self, &hx, 0, 1);
            let mut q = self.lin(&xn, n, &format!("{a}.q"));
            self.norm(&mut q, n, true, Some(&self.w[&format!("{a}.norm_q.weight")]), None);
            let mut k = self.lin(&xn, n, &format!("{a}.k"));
            self.norm(&mut k, n, true, Some(&self.w[&format!("{a}.norm_k.weight")]), None);
            let v = self.lin(&xn, n, &format!("{a}.v"));
            let (khat, qhat) = (self.l2(&k, 1.0), self.l2(&q, 1.0 / (hd as f64).sqrt()));
            let gates = if self.memory {
                self.lin(&xn, n, &format!("{a}.memory.beta"))
                    .into_iter()
                    .chain(self.lin(&xn, n, &format!("{a}.memory.alpha")))
                    .chain(self.lin(&xn, n, &format!("{a}.memory.gate")))
                    .collect()
            } else {
                vec![0.0; 3 * n * heads]
            };
            let a_log = self.w.get(&format!("{a}.memory.A_log")).cloned().unwrap_or(vec![0.0; heads]);
            let (mut qr, mut kr) = (q.clone(), k.clone());
            self.rope(&mut qr, n);
            self.rope(&mut kr, n);
            let entries: Vec<Entry> = (0..n)
                .map(|t| Entry {
                    k: kr[t * dim..][..dim].to_vec(),
                    v: v[t * dim..][..dim].to_vec(),
                    khat: khat[t * dim..][..dim].to_vec(),
                    beta: (0..heads).map(|h| sigmoid(gates[t * heads + h])).collect(),
                    decay: (0..heads).map(|h| (-a_log[h].exp() * (1.0 + gates[n * heads + t * heads + h].exp()).ln()).exp()).collect(),
                })
                .collect();
            let start = match mode {
                Mode::First => {
                    self.cache[b].extend(entries.iter().cloned());
                    self.cache[b].len() - n
                }
                Mode::Again => self.cache[b].len() - n,
                Mode::Recache(g0) => self.globals().iter().position(|&g| g == g0).expect("re-cached tokens are cached"),
            };
            self.cache[b][start..start + n].clone_from_slice(&entries);
            let keys: Vec<&[f64]> = self.cache[b][..start + n].iter().map(|e| &e.k[..]).collect();
            let vals: Vec<&[f64]> = self.cache[b][..start + n].iter().map(|e| &e.v[..]).collect();
            let mut y = self.attend(&qr, &keys, &vals);
            if self.memory {
                for t in 0..n {
                    for h in 0..heads {
                        let g = sigmoid(gates[2 * n * heads + t * heads + h]);
                        let s = &self.state[b][h];
                        for i in 0..hd {
                            let r: f64 = (0..hd).map(|j| s[i * hd + j] * qhat[t * dim + h * hd + j]).sum();
                            y[t * dim + h * hd + i] += g * r;
                        }
                    }
                }
            }
            let o = self.lin(&y, n, &format!("{a}.o"));
            for i in 0..n * dim {
                hx[i] += o[i] * md(i / dim, 2, i % dim);
            }
            let cr = format!("{p}.cross_attn");
            let mut xc = hx.clone();
            self.norm(&mut xc, n, false, Some(&self.w[&format!("{p}.norm3.weight")]), Some(&self.w[&format!("{p}.norm3.bias")]));
            let mut cq = self.lin(&xc, n, &format!("{cr}.q"));
            self.norm(&mut cq, n, true, Some(&self.w[&format!("{cr}.norm_q.weight")]), None);
            let (ck, cv) = &self.ctx[b];
            let ckr: Vec<&[f64]> = ck.chunks(dim).collect();
            let cvr: Vec<&[f64]> = cv.chunks(dim).collect();
            let co = self.lin(&self.attend(&cq, &ckr, &cvr), n, &format!("{cr}.o"));
            hx.iter_mut().zip(&co).for_each(|(h, o)| *h += o);
            let xn = modulated(self, &hx, 3, 4);
            let mut fh = self.lin(&xn, n, &format!("{p}.ffn.0"));
            fh.iter_mut().for_each(|v| *v = gelu_tanh(*v));
            let fo = self.lin(&fh, n, &format!("{p}.ffn.2"));
            for i in 0..n * dim {
                hx[i] += fo[i] * md(i / dim, 5, i % dim);
            }
        }
        let hm = &self.w["head.modulation"];
        self.norm(&mut hx, n, false, None, None);
        for t in 0..n {
            for ci in 0..dim {
                let ef = e[(t / per) * dim + ci];
                hx[t * dim + ci] = hx[t * dim + ci] * (1.0 + hm[dim + ci] + ef) + hm[ci] + ef;
            }
        }
        let out = self.lin(&hx, n, "head.head");
        let mut flow = vec![0f32; f * ch * hh * ww];
        for fi in 0..f {
            for ci in 0..ch {
                for y in 0..hh {
                    for xx in 0..ww {
                        let tk = (fi * rows + y / 2) * cols + xx / 2;
                        flow[((fi * ch + ci) * hh + y) * ww + xx] = out[tk * 4 * ch + ((y % 2) * 2 + xx % 2) * ch + ci] as f32;
                    }
                }
            }
        }
        flow
    }

    /// The chunk is done: the next one starts `frames` later.
    pub fn advance(&mut self) {
        let n = self.cfg.frames * (self.cfg.height / 2) * (self.cfg.width / 2);
        self.history.push((self.written - n, self.frame0, std::mem::take(&mut self.clean)));
        self.frame0 += self.cfg.frames;
    }

    /// Tokens in block 0's cache.
    pub fn cached(&self) -> usize {
        self.cache[0].len()
    }
}

impl graph::models::dit::sampler::ChunkModel for Reference {
    type Error = std::convert::Infallible;

    fn flow(&mut self, x: &[f32], t: f32, pass: graph::models::dit::sampler::Pass) -> Result<Vec<f32>, Self::Error> {
        Ok(Reference::flow(self, x, t as f64, pass == graph::models::dit::sampler::Pass::First))
    }

    fn advance(&mut self) -> Result<(), Self::Error> {
        Reference::advance(self);
        Ok(())
    }
}
