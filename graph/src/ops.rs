//! Typed op constructors over the runtime's kernel families. Each infers its output
//! shape, checks its inputs at build time (naming the op) and appends dispatches.
use crate::builder::Builder;
use crate::error::{GraphError, Result};
use crate::ir::TensorId;
use runtime::kernels::{attention, copy, elementwise, matmul, norm, rope, ssm_scan};
use runtime::DType;

/// What a linear layer does after `X·Wᵀ + b` (fused into the matmul).
#[derive(Clone, Copy, Debug)]
pub enum Epilogue {
    None,
    Gelu,
    Silu,
    /// `+ residual`
    Residual(TensorId),
    /// `residual + gate[frame, slot] ⊙ ·`: the DiT's gated residual, with `gate` the
    /// per-frame modulation `[F, S·N]` and `frame_rows` tokens per frame.
    Gated {
        residual: TensorId,
        gate: TensorId,
        slot: usize,
        frame_rows: usize,
    },
}

/// Which rows of a product one [`Builder::linear_into`] call makes, and where they
/// are read and written (see there).
#[derive(Clone, Copy, Debug)]
pub struct RowBlock {
    pub rows: usize,
    pub x_row0: usize,
    pub y_row0: usize,
}

/// Row normalisations.
#[derive(Clone, Copy, Debug)]
pub enum Norm {
    Layer,
    Affine {
        weight: TensorId,
        bias: TensorId,
    },
    Rms {
        weight: TensorId,
    },
    /// `LN(x)·(1 + m[f, scale]) + m[f, shift]`, `m` = `[F, S·D]`.
    Modulated {
        modulation: TensorId,
        shift: usize,
        scale: usize,
        frame_rows: usize,
    },
}

/// A `[rows, cols]` view of any tensor whose last dim is `cols`.
fn rows_of(shape: &[usize]) -> (usize, usize) {
    let cols = *shape.last().unwrap_or(&1);
    (shape.iter().product::<usize>() / cols.max(1), cols)
}

impl Builder {
    fn shape_error(&self, op: &str, message: String) -> GraphError {
        GraphError::Shape { op: op.into(), message }
    }

    fn elementwise(&mut self, name: &str, op: elementwise::Op, a: TensorId, b: TensorId, alpha: f32) -> Result<TensorId> {
        let shape = self.shape(a).to_vec();
        let (n, len_b) = (shape.iter().product::<usize>(), self.shape(b).iter().product::<usize>());
        if len_b == 0 || n % len_b != 0 {
            return Err(self.shape_error(name, format!("cannot broadcast {:?} over {shape:?}", self.shape(b))));
        }
        let y = self.activation(name, &shape, DType::F32);
        self.dispatch(name, elementwise::Elementwise { op }, &elementwise::Params::new(n, len_b, alpha), &[a, b, y])?;
        Ok(y)
    }

    /// `a + alpha·b`, with `b` repeating over `a` (a bias row, a per-channel vector).
    pub fn add(&mut self, name: &str, a: TensorId, b: TensorId, alpha: f32) -> Result<TensorId> {
        self.elementwise(name, elementwise::Op::Add, a, b, alpha)
    }

    pub fn mul(&mut self, name: &str, a: TensorId, b: TensorId) -> Result<TensorId> {
        self.elementwise(name, elementwise::Op::Mul, a, b, 1.0)
    }

    pub fn silu(&mut self, name: &str, a: TensorId) -> Result<TensorId> {
        self.elementwise(name, elementwise::Op::Silu, a, a, 1.0)
    }

    pub fn gelu(&mut self, name: &str, a: TensorId) -> Result<TensorId> {
        self.elementwise(name, elementwise::Op::Gelu, a, a, 1.0)
    }

    /// `epilogue(x·w + b)` for `x [.., K]` and a weight stored transposed, `w [K, N]`
    /// → `[.., N]`, given as column blocks `[K, N_b]` (one unless it outgrew a binding).
    pub fn linear(&mut self, name: &str, x: TensorId, w: &[TensorId], b: Option<TensorId>, epi: Epilogue) -> Result<TensorId> {
        let m = rows_of(self.shape(x)).0;
        let n = self.weight_columns(name, x, w)?.last().map_or(0, |c| c.end);
        let mut shape = self.shape(x).to_vec();
        *shape.last_mut().expect("rank ≥ 1") = n;
        let y = self.activation(name, &shape, DType::F32);
        self.linear_into(name, x, w, b, epi, y, RowBlock { rows: m, x_row0: 0, y_row0: 0 })?;
        Ok(y)
    }

    /// Output columns of each weight block, checking the blocks against `x [.., K]`.
    fn weight_columns(&self, name: &str, x: TensorId, w: &[TensorId]) -> Result<Vec<std::ops::Range<usize>>> {
        let k = rows_of(self.shape(x)).1;
        if w.is_empty() || w.iter().any(|&wb| self.dtype(wb) != self.dtype(w[0])) {
            return Err(self.shape_error(name, format!("{} weight blocks, expected one or more of one dtype", w.len())));
        }
        let mut cols = Vec::with_capacity(w.len());
        for &wb in w {
            let ws = self.shape(wb).to_vec();
            if ws.len() != 2 || ws[0] != k {
                return Err(self.shape_error(name, format!("input {:?} does not fit weight [in, out] {ws:?}", self.shape(x))));
            }
            let start = cols.last().map_or(0, |c: &std::ops::Range<usize>| c.end);
            cols.push(start..start + ws[1]);
        }
        Ok(cols)
    }

    /// [`Builder::linear`] for `block.rows` rows of the product, into the existing `y`:
    /// rows are read from `x` at `block.x_row0` and written to `y` (whose residual
    /// and gate rows they also pick) at `block.y_row0`. Either side may be a whole
    /// tensor or one row block of it, which is how an activation too large for a
    /// binding is made and consumed block by block.
    #[allow(clippy::too_many_arguments)]
    pub fn linear_into(
        &mut self,
        name: &str,
        x: TensorId,
        w: &[TensorId],
        b: Option<TensorId>,
        epi: Epilogue,
        y: TensorId,
        block: RowBlock,
    ) -> Result<()> {
        let RowBlock { rows, x_row0, y_row0 } = block;
        let ((xm, k), (ym, yn)) = (rows_of(self.shape(x)), rows_of(self.shape(y)));
        let cols = self.weight_columns(name, x, w)?;
        let n = cols.last().map_or(0, |c| c.end);
        if x_row0 + rows > xm || y_row0 + rows > ym || yn != n {
            return Err(self.shape_error(
                name,
                format!(
                    "rows {x_row0}.. of {:?} into rows {y_row0}.. of {:?}: {rows} rows of {n} do not fit",
                    self.shape(x),
                    self.shape(y)
                ),
            ));
        }
        if let Some(b) = b {
            self.expect_shape(name, "bias", b, &[n])?;
        }
        let mut p = matmul::Params::dense(ym, n, k);
        let mut args = vec![x, w[0]];
        args.extend(b);
        let residual = match epi {
            Epilogue::Residual(r) | Epilogue::Gated { residual: r, .. } => {
                if rows_of(self.shape(r)) != (ym, n) {
                    return Err(self.shape_error(name, format!("residual {:?} is not {ym} rows of {n}", self.shape(r))));
                }
                args.push(r);
                if let Epilogue::Gated { gate, slot, frame_rows, .. } = epi {
                    let (frames, width) = rows_of(self.shape(gate));
                    if width < (slot + 1) * n || ym.div_ceil(frame_rows) > frames {
                        return Err(self.shape_error(name, format!("gate {:?} has no slot {slot} for {ym} rows", self.shape(gate))));
                    }
                    (p.g_off, p.g_row, p.rows_per_gate) = ((slot * n) as u32, width as u32, frame_rows as u32);
                    args.push(gate);
                    matmul::Residual::Gated
                } else {
                    matmul::Residual::Add
                }
            }
            _ => matmul::Residual::None,
        };
        let act = match epi {
            Epilogue::Gelu => matmul::Act::Gelu,
            Epilogue::Silu => matmul::Act::Silu,
            _ => matmul::Act::None,
        };
        let p = p.row_block(rows, x_row0, y_row0);
        args.push(y);
        for (&wb, c) in w.iter().zip(cols) {
            let pb = p.column_block(c);
            args[1] = wb;
            let kernel = matmul::Matmul::for_device(&self.caps, self.dtype(wb), b.is_some(), act, residual, &pb);
            self.dispatch(name, kernel, &pb, &args)?;
        }
        Ok(())
    }

    pub fn norm(&mut self, name: &str, x: TensorId, kind: Norm, eps: f64) -> Result<TensorId> {
        let (rows, d) = rows_of(self.shape(x));
        let mut p = norm::Params::dense(rows, d, eps as f32);
        let y = self.activation(name, &self.shape(x).to_vec(), DType::F32);
        let (kernel, args) = match kind {
            Norm::Layer => (norm::Norm::for_device(&self.caps, norm::Stat::Layer, norm::Scale::None, false), vec![x, y]),
            Norm::Affine { weight, bias } => {
                self.expect_shape(name, "weight", weight, &[d])?;
                self.expect_shape(name, "bias", bias, &[d])?;
                (norm::Norm::for_device(&self.caps, norm::Stat::Layer, norm::Scale::Affine, false), vec![x, weight, bias, y])
            }
            Norm::Rms { weight } => {
                self.expect_shape(name, "weight", weight, &[d])?;
                (norm::Norm::for_device(&self.caps, norm::Stat::Rms, norm::Scale::Weight, false), vec![x, weight, y])
            }
            Norm::Modulated { modulation, shift, scale, frame_rows } => {
                let (frames, width) = rows_of(self.shape(modulation));
                if width < (shift.max(scale) + 1) * d || rows.div_ceil(frame_rows) > frames {
                    return Err(
                        self.shape_error(name, format!("modulation {:?} does not cover {rows} rows of {d}", self.shape(modulation)))
                    );
                }
                (p.frame_rows, p.mod_row, p.shift_off, p.scale_off) =
                    (frame_rows as u32, width as u32, (shift * d) as u32, (scale * d) as u32);
                (norm::Norm::for_device(&self.caps, norm::Stat::Layer, norm::Scale::Modulated, false), vec![x, modulation, y])
            }
        };
        self.dispatch(name, kernel, &p, &args)?;
        Ok(y)
    }

    /// 3-axis RoPE of `x [frames·rows·cols, heads·d]` with the angle `table` of this call.
    pub fn rope(&mut self, name: &str, x: TensorId, table: TensorId, grid: (usize, usize, usize), heads: usize) -> Result<TensorId> {
        let (tokens, width) = rows_of(self.shape(x));
        let (frames, rows, cols) = grid;
        if tokens != frames * rows * cols || width % heads != 0 {
            return Err(self.shape_error(name, format!("{:?} is not {frames}×{rows}×{cols} tokens of {heads} heads", self.shape(x))));
        }
        let p = rope::Params::new(frames, rows, cols, heads, width / heads);
        let y = self.activation(name, &self.shape(x).to_vec(), DType::F32);
        self.dispatch(name, rope::Rope, &p, &[x, table, y])?;
        Ok(y)
    }

    /// Attention of `q [tq, heads·d]` over the rows of `k`, `v` listed in `ranges [R, 2]` (u32).
    /// `precision` is the dtype of the weights that made k and v: with 16-bit weights a GPU
    /// may stage them as f16 (see [`attention::Attention::for_device`]).
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &mut self,
        name: &str,
        q: TensorId,
        k: TensorId,
        v: TensorId,
        ranges: TensorId,
        heads: usize,
        scale: f32,
        precision: DType,
    ) -> Result<TensorId> {
        self.attention_biased(name, q, k, v, ranges, None, heads, scale, precision)
    }

    /// [`Builder::attention`], with T5's relative-position bias when `bias` is given:
    /// `[heads, tq + tk − 1]` indexed by key minus query (see [`attention::bias_len`]).
    #[allow(clippy::too_many_arguments)]
    pub fn attention_biased(
        &mut self,
        name: &str,
        q: TensorId,
        k: TensorId,
        v: TensorId,
        ranges: TensorId,
        bias: Option<TensorId>,
        heads: usize,
        scale: f32,
        precision: DType,
    ) -> Result<TensorId> {
        let (tq, width) = rows_of(self.shape(q));
        let (tk, kw) = rows_of(self.shape(k));
        if kw != width || self.shape(k) != self.shape(v) || width % heads != 0 {
            return Err(
                self.shape_error(name, format!("q {:?}, k {:?}, v {:?} with {heads} heads", self.shape(q), self.shape(k), self.shape(v)))
            );
        }
        let kv = self.cache_dtype(name, ("k", k), ("v", v))?;
        let (n_ranges, two) = rows_of(self.shape(ranges));
        if two != 2 || self.dtype(ranges) != DType::U32 {
            return Err(self.shape_error(name, format!("ranges must be u32 [R, 2], got {:?}", self.shape(ranges))));
        }
        let mut p = attention::Params::dense(tq, heads, width / heads, n_ranges, scale);
        let mut args = vec![q, k, v, ranges];
        if let Some(b) = bias {
            self.expect_shape(name, "bias", b, &[heads, attention::bias_len(tq, tk)])?;
            p.tk = tk as u32;
            args.push(b);
        }
        let o = self.activation(name, &self.shape(q).to_vec(), DType::F32);
        args.push(o);
        self.dispatch(name, attention::Attention::for_device(&self.caps, width / heads, bias.is_some(), precision, kv), &p, &args)?;
        Ok(o)
    }

    /// A strided copy from `src` into `dst` (an existing tensor, written in place): f32
    /// to f32, or f32 to f16 (rounded, saturating) into an f16 cache.
    pub fn copy_into(&mut self, name: &str, src: TensorId, dst: TensorId, p: &copy::Params) -> Result<usize> {
        let (s, d) = (self.dtype(src), self.dtype(dst));
        match copy::Copy::between(s, d).filter(|c| self.caps.f16 || !(c.src_f16 || c.dst_f16)) {
            Some(kernel) => self.dispatch(name, kernel, p, &[src, dst]),
            None => Err(self.shape_error(name, format!("no copy from {s} to {d} on this adapter (f16 needs shader-f16)"))),
        }
    }

    /// A strided copy into a new tensor of `shape`.
    pub fn copy_new(&mut self, name: &str, src: TensorId, shape: &[usize], p: &copy::Params) -> Result<TensorId> {
        let y = self.activation(name, shape, DType::F32);
        self.copy_into(name, src, y, p)?;
        Ok(y)
    }

    /// Two copy nodes that write `src`'s rows into slots of the cache `dst`; the
    /// slots change every call, so they start empty and are set per run through
    /// [`crate::Compiled::set_params`] with [`copy::Params::rows`].
    pub fn write_rows(&mut self, name: &str, src: TensorId, dst: TensorId) -> Result<[usize; 2]> {
        let (_, d) = rows_of(self.shape(src));
        let (_, dd) = rows_of(self.shape(dst));
        if d != dd {
            return Err(self.shape_error(name, format!("rows of {:?} do not fit cache {:?}", self.shape(src), self.shape(dst))));
        }
        let idle = copy::Params::rows(0, d, 0, 0);
        Ok([self.copy_into(name, src, dst, &idle)?, self.copy_into(name, src, dst, &idle)?])
    }

    /// The mirror of [`Builder::write_rows`]: two copy nodes that gather up to `rows`
    /// rows of the cache `src` into a new f32 tensor `[rows, width]`, in the order set
    /// per run (the slots change every call; they start empty).
    pub fn read_rows(&mut self, name: &str, src: TensorId, rows: usize) -> Result<(TensorId, [usize; 2])> {
        let (_, d) = rows_of(self.shape(src));
        let y = self.activation(name, &[rows, d], DType::F32);
        let idle = copy::Params::rows(0, d, 0, 0);
        Ok((y, [self.copy_into(name, src, y, &idle)?, self.copy_into(name, src, y, &idle)?]))
    }
}

/// The gates of one call (MEMORY.md B.3/B.6), each `[T, H]`.
pub struct MemoryGates {
    pub beta: TensorId,
    pub decay: TensorId,
    /// B.3's router gate g; B.6 routes with γ in the read instead.
    pub router: Option<TensorId>,
}

/// VideoSSM memory ops (MEMORY.md B.3, B.6).
impl Builder {
    /// Raw gate projections `[T, G·H]` + `A_log [H]` → β, decay a and, with `router`
    /// (G = 3, B.3), the router gate g; without it G = 2 (B.6).
    pub fn memory_gates(&mut self, name: &str, raw: TensorId, a_log: TensorId, heads: usize, router: bool) -> Result<MemoryGates> {
        let (t, w) = rows_of(self.shape(raw));
        let groups = if router { 3 } else { 2 };
        if w != groups * heads {
            return Err(self.shape_error(name, format!("raw gates {:?} are not [T, {groups}·{heads}]", self.shape(raw))));
        }
        self.expect_shape(name, "A_log", a_log, &[heads])?;
        let mut out: Vec<TensorId> =
            ["beta", "decay", "gate"][..groups].iter().map(|s| self.activation(&format!("{name}.{s}"), &[t, heads], DType::F32)).collect();
        let mut args = vec![raw, a_log];
        args.extend(&out);
        self.dispatch(name, ssm_scan::Ssm::Gates { router }, &ssm_scan::Params::tokens(t, heads, 0), &args)?;
        let router = if router { out.pop() } else { None };
        Ok(MemoryGates { beta: out[0], decay: out[1], router })
    }

    /// Per-head `scale · x_h / max(‖x_h‖, 1e-12)` of `x [T, heads·d]` (F.normalize).
    pub fn l2norm_heads(&mut self, name: &str, x: TensorId, heads: usize, scale: f32) -> Result<TensorId> {
        let (t, w) = rows_of(self.shape(x));
        let mut p = norm::Params::dense(t * heads, w / heads, 1e-12);
        p.gain = scale;
        let y = self.activation(name, &self.shape(x).to_vec(), DType::F32);
        self.dispatch(name, norm::Norm::for_device(&self.caps, norm::Stat::L2, norm::Scale::None, false), &p, &[x, y])?;
        Ok(y)
    }

    /// `[H, d, d]` of `state`, checked against the rows `[T, H·d]` of the scanned
    /// tokens' k̂ (f32) and of the v cache `[slots, H·d]`, and whether v is f16.
    fn state_dims(&self, name: &str, state: TensorId, khat: TensorId, v: TensorId) -> Result<(usize, usize, bool)> {
        let s = self.shape(state).to_vec();
        let width = rows_of(self.shape(v)).1;
        if s.len() != 3 || s[1] != s[2] || rows_of(self.shape(khat)).1 != width || width != s[0] * s[1] {
            return Err(
                self.shape_error(name, format!("state {s:?} does not fit k̂ {:?} and the v cache {:?}", self.shape(khat), self.shape(v)))
            );
        }
        if self.dtype(khat) != DType::F32 {
            return Err(self.shape_error(name, format!("k̂ is {}, the scans read f32", self.dtype(khat))));
        }
        let f16 = match self.dtype(v) {
            DType::F32 => false,
            DType::F16 if self.caps.f16 => true,
            other => return Err(self.shape_error(name, format!("the v cache is {other}: f32, or f16 on an adapter with shader-f16"))),
        };
        Ok((s[0], s[1], f16))
    }

    /// The dtype of a pair of caches read together (attention's K and V): both f32, or
    /// both f16 on an adapter with `shader-f16`.
    fn cache_dtype(&self, name: &str, (an, a): (&str, TensorId), (bn, b): (&str, TensorId)) -> Result<DType> {
        match (self.dtype(a), self.dtype(b)) {
            (DType::F32, DType::F32) => Ok(DType::F32),
            (DType::F16, DType::F16) if self.caps.f16 => Ok(DType::F16),
            (x, y) => {
                Err(self.shape_error(name, format!("{an} {x} and {bn} {y} must both be f32, or both f16 on an adapter with shader-f16")))
            }
        }
    }

    /// B.3: folds cached slots into `state [H, d, d]`; which slots is set per run with
    /// [`ssm_scan::Params::scan`] (it starts with none).
    pub fn ssm_scan(&mut self, name: &str, state: TensorId, khat: TensorId, v: TensorId, beta: TensorId, decay: TensorId) -> Result<usize> {
        let (h, d, f16) = self.state_dims(name, state, khat, v)?;
        self.dispatch(name, ssm_scan::Ssm::Scan { f16 }, &ssm_scan::Params::scan(h, d, &[]), &[khat, v, beta, decay, state])
    }

    /// B.6: folds cached slots into `state [H, d, d]` by the gated delta rule, at most
    /// `max_tokens` per run, chunked where the adapter's workgroup memory allows
    /// ([`ssm_scan::DeltaScan::for_device`]). Returns the nodes whose params are set
    /// per run, all with the same [`ssm_scan::Params::scan`] (they start with none).
    #[allow(clippy::too_many_arguments)]
    pub fn ssm_delta_scan(
        &mut self,
        name: &str,
        state: TensorId,
        khat: TensorId,
        v: TensorId,
        beta: TensorId,
        decay: TensorId,
        max_tokens: usize,
    ) -> Result<Vec<usize>> {
        let (h, d, f16) = self.state_dims(name, state, khat, v)?;
        let p = ssm_scan::Params::scan(h, d, &[]);
        match ssm_scan::DeltaScan::for_device(&self.caps) {
            ssm_scan::DeltaScan::Step => {
                Ok(vec![self.dispatch(name, ssm_scan::Ssm::DeltaStep { f16 }, &p, &[khat, v, beta, decay, state])?])
            }
            ssm_scan::DeltaScan::Chunked(chunk) => {
                if d > ssm_scan::MAX_HEAD_DIM {
                    return Err(self.shape_error(name, format!("head dim {d} exceeds {}", ssm_scan::MAX_HEAD_DIM)));
                }
                let w = self.activation(&format!("{name}.w"), &[max_tokens.max(1), h * d], DType::F32);
                let u = self.activation(&format!("{name}.u"), &[max_tokens.max(1), h * d], DType::F32);
                let g = self.activation(&format!("{name}.g"), &[max_tokens.max(1), h], DType::F32);
                let prepare = self.dispatch(name, ssm_scan::Ssm::DeltaPrepare { chunk, f16 }, &p, &[khat, v, beta, decay, w, u, g])?;
                let update = self.dispatch(name, ssm_scan::Ssm::DeltaUpdate { chunk }, &p, &[khat, w, u, g, state])?;
                Ok(vec![prepare, update])
            }
        }
    }

    /// `(H, d)` of a read of `state` by `qhat`, which must be shaped like `y`.
    fn read_dims(&self, name: &str, y: TensorId, state: TensorId, qhat: TensorId) -> Result<(usize, usize, usize)> {
        let s = self.shape(state).to_vec();
        let (t, w) = rows_of(self.shape(y));
        self.expect_shape(name, "q̂", qhat, &self.shape(y).to_vec())?;
        if s.len() != 3 || s[0] * s[1] != w || s[1] > ssm_scan::MAX_HEAD_DIM {
            return Err(self.shape_error(name, format!("state {s:?} does not fit rows of {w} (head dim ≤ {})", ssm_scan::MAX_HEAD_DIM)));
        }
        Ok((t, s[0], s[1]))
    }

    /// B.3: `y + g ⊙ S q̂` per head.
    pub fn ssm_read(&mut self, name: &str, y: TensorId, state: TensorId, qhat: TensorId, gate: TensorId) -> Result<TensorId> {
        let (t, h, d) = self.read_dims(name, y, state, qhat)?;
        self.expect_shape(name, "router gate", gate, &[t, h])?;
        let o = self.activation(name, &self.shape(y).to_vec(), DType::F32);
        self.dispatch(name, ssm_scan::Ssm::read_for(&self.caps, false), &ssm_scan::Params::tokens(t, h, d), &[y, state, qhat, gate, o])?;
        Ok(o)
    }

    /// B.6: `y + m[f, slot] ⊙ γ ⊙ Swish(g ⊙ RMSNorm_d(S q̂))` for the residual stream
    /// `y` after the output projection; `gate = out_gate(x) [T, D]`, `consts =
    /// [norm.weight | router.weight | router.bias]`, `ln_rho [F]`, `modulation [F, S·D]`.
    #[allow(clippy::too_many_arguments)]
    pub fn ssm_read_delta(
        &mut self,
        name: &str,
        y: TensorId,
        state: TensorId,
        qhat: TensorId,
        gate: TensorId,
        consts: TensorId,
        ln_rho: TensorId,
        modulation: TensorId,
        slot: usize,
        frame_rows: usize,
        eps: f64,
    ) -> Result<TensorId> {
        let (t, h, d) = self.read_dims(name, y, state, qhat)?;
        let width = h * d;
        self.expect_shape(name, "out gate", gate, &self.shape(y).to_vec())?;
        self.expect_shape(name, "norm and router weights", consts, &[d + 2 * width])?;
        let frames = t.div_ceil(frame_rows.max(1));
        let (mf, mrow) = rows_of(self.shape(modulation));
        let rho_frames: usize = self.shape(ln_rho).iter().product();
        if frame_rows == 0 || rho_frames < frames || mf < frames || mrow < (slot + 1) * width {
            return Err(self.shape_error(
                name,
                format!(
                    "ln ρ {:?} / modulation {:?} do not cover {frames} frames, slot {slot}",
                    self.shape(ln_rho),
                    self.shape(modulation)
                ),
            ));
        }
        let p = ssm_scan::Params::read_delta(t, h, d, frame_rows, mrow, slot * width, eps as f32);
        let o = self.activation(name, &self.shape(y).to_vec(), DType::F32);
        self.dispatch(name, ssm_scan::Ssm::read_for(&self.caps, true), &p, &[y, state, qhat, gate, consts, ln_rho, modulation, o])?;
        Ok(o)
    }
}
