"""The causal Wan DiT with the VideoSSM memory, written from spec/MODEL.md and spec/MEMORY.md.

The memory has two forms, picked by config.json's `memory_type`: "gated_linear" (B.3,
the default when the key is absent) and "gated_delta" (B.6, the paper's: gated delta
rule, RMSNorm + Swish output gate, position-aware router with `memory_horizon`).

Two ways to run the same weights:
- `ARCache` + `DiT.step`: the runtime's AR loop (FORMAT.md), token cache with sinks,
  eviction and a per-head SSM state S fed by evicted tokens. Used for parity and sampling.
- `DiT.forward_train`: the same computation for a whole training sequence at once
  (clean stream + noisy stream, masks per chunk, the SSM read in parallel form).
  `check_parity.py` checks that both agree.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def sinusoid(freq_dim, t):
    half = freq_dim // 2
    w = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half)
    a = t.to(torch.float64)[:, None] * w[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1).float()


def rope_angles(d, frames, h, w):
    """Per-token angles [len(frames)*h*w, d/2] for the 3-axis RoPE (frame, row, column)."""
    c = d // 2
    sizes = [c - 2 * (c // 3), c // 3, c // 3]

    def group(n, pos):
        inv = 1.0 / torch.pow(10000.0, torch.arange(0, 2 * n, 2, dtype=torch.float64) / (2 * n))
        return pos.to(torch.float64)[:, None] * inv[None]

    f = torch.as_tensor(frames)
    af = group(sizes[0], f)[:, None, None, :].expand(len(f), h, w, -1)
    ah = group(sizes[1], torch.arange(h))[None, :, None, :].expand(len(f), h, w, -1)
    aw = group(sizes[2], torch.arange(w))[None, None, :, :].expand(len(f), h, w, -1)
    return torch.cat([af, ah, aw], dim=-1).reshape(len(f) * h * w, c)


def rope(x, ang):
    """x [..., N, H, d]; ang [N, d/2] (float64): rotate adjacent channel pairs."""
    cos = torch.cos(ang).to(x.dtype)[:, None, :]
    sin = torch.sin(ang).to(x.dtype)[:, None, :]
    xr = x.unflatten(-1, (-1, 2))
    a, b = xr[..., 0], xr[..., 1]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def ln(x, eps=1e-6):
    return F.layer_norm(x, x.shape[-1:], eps=eps)


class Memory(nn.Module):
    """MEMORY.md B.3 (`memory_type` "gated_linear", the default): per-head injection gate
    beta, decay a, router gate g; the read g_h * S_h q̂_h joins the attention output
    before `o`."""

    rule = "gated_linear"

    def __init__(self, dim, heads):
        super().__init__()
        self.beta = nn.Linear(dim, heads)
        self.alpha = nn.Linear(dim, heads)
        self.gate = nn.Linear(dim, heads)
        self.A_log = nn.Parameter(torch.zeros(heads))

    def gates(self, x):
        beta = torch.sigmoid(self.beta(x))
        log_a = -torch.exp(self.A_log) * F.softplus(self.alpha(x))
        return beta, log_a, torch.sigmoid(self.gate(x))

    def fuse(self, y, r, gates, frames):
        """y [..., N, H, d] local attention, r = S q̂ [..., N, H, d] -> (y before `o`, term
        added after `o`)."""
        return y + gates[2].unsqueeze(-1) * r, None


class DeltaMemory(nn.Module):
    """MEMORY.md B.6 (`memory_type` "gated_delta", the paper's Eq. 5-10): injection gate
    beta (no bias), decay a = exp(-exp(A_log) softplus(W_a x + b_a)), gated delta-rule
    write, read S q̂ -> per-head RMSNorm (one weight [d] shared by the heads) ->
    Swish(out_gate(x) * n) -> times the router gamma(f), added AFTER the projection `o`.

    Readings where the text allows two (all confirmed by ../parity/dit-memory-gd, which
    the alternatives miss by 2e-2 to 2.5 x std): the gate inside the Swish, Swish(g * n),
    not Swish(g) * n; RMSNorm over each head's d channels, not over D; gamma * H_global
    added to o(...)'s output, not to the heads before `o`; rho = min(1, (f + 1) / T) with
    f the query token's own latent frame (not the chunk's first frame, not f / T); the
    decay applied before the delta prediction, u = beta (v - a S k̂), S <- a S + u k̂ᵀ (not
    S <- a (S + beta (v - S k̂) k̂ᵀ)). q̂ = l2norm(q_h) / sqrt(d) as B.6 writes it (the
    bundle can hardly tell: the RMSNorm after the read undoes a scale of q̂ up to eps)."""

    rule = "gated_delta"

    def __init__(self, dim, heads, eps, horizon):
        super().__init__()
        if horizon is None or horizon < 1:
            raise ValueError('memory_type "gated_delta" needs "memory_horizon" (latent frames T >= 1) in config.json')
        self.horizon = horizon
        self.beta = nn.Linear(dim, heads, bias=False)
        self.alpha = nn.Linear(dim, heads)
        self.A_log = nn.Parameter(torch.zeros(heads))
        self.norm = RMSNorm(dim // heads, eps)
        self.out_gate = nn.Linear(dim, dim)
        self.router = nn.Linear(1, dim)

    def gates(self, x):
        beta = torch.sigmoid(self.beta(x))
        log_a = -torch.exp(self.A_log) * F.softplus(self.alpha(x))
        return beta, log_a, self.out_gate(x)

    def gamma(self, frames):
        """Router (Eq. 9) for absolute latent-frame indices `frames` [N] -> [N, D]."""
        rho = ((frames.to(torch.float32) + 1) / self.horizon).clamp(max=1.0)
        return torch.sigmoid(self.router(torch.log(rho)[:, None]))

    def fuse(self, y, r, gates, frames):
        n = self.norm(r).flatten(-2)  # RMSNorm over d per head, then the heads side by side [..., N, D]
        return y, self.gamma(frames) * F.silu(gates[2] * n)  # Swish(g * n): the gate inside (Eq. 8 as written)


def make_memory(kind, dim, heads, eps, horizon):
    if kind is None:
        return None
    if kind == "gated_linear":
        return Memory(dim, heads)
    if kind == "gated_delta":
        return DeltaMemory(dim, heads, eps, horizon)
    raise ValueError(f"unknown memory_type {kind!r} (gated_linear or gated_delta)")


class SelfAttn(nn.Module):
    def __init__(self, dim, heads, eps, memory, horizon=None):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(dim, eps), RMSNorm(dim, eps)
        self.memory = make_memory(memory, dim, heads, eps, horizon)

    def project(self, x):
        """q, k (normed, before RoPE), v as [..., N, H, d]; memory gates (per token)."""
        H = self.heads
        q = self.norm_q(self.q(x)).unflatten(-1, (H, -1))
        k = self.norm_k(self.k(x)).unflatten(-1, (H, -1))
        v = self.v(x).unflatten(-1, (H, -1))
        g = self.memory.gates(x) if self.memory is not None else None
        return q, k, v, g


class CrossAttn(nn.Module):
    def __init__(self, dim, heads, eps):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(dim, eps), RMSNorm(dim, eps)

    def forward(self, x, ctx):
        H = self.heads
        q = self.norm_q(self.q(x)).unflatten(-1, (H, -1)).transpose(-2, -3)
        k = self.norm_k(self.k(ctx)).unflatten(-1, (H, -1)).transpose(-2, -3)
        v = self.v(ctx).unflatten(-1, (H, -1)).transpose(-2, -3)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.o(y.transpose(-2, -3).flatten(-2))


class Block(nn.Module):
    def __init__(self, dim, ffn_dim, heads, eps, memory, horizon=None):
        super().__init__()
        self.eps = eps
        self.self_attn = SelfAttn(dim, heads, eps, memory, horizon)
        self.cross_attn = CrossAttn(dim, heads, eps)
        self.norm3 = nn.LayerNorm(dim, eps=eps)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(ffn_dim, dim))
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def mods(self, e0):
        """e0 [..., F, 6, D] -> six [..., F, 1, D]."""
        return (self.modulation + e0).unsqueeze(-2).unbind(-3)

    def modulate(self, x, shift, scale, P):
        return (ln(x, self.eps).unflatten(-2, (-1, P)) * (1 + scale) + shift).flatten(-3, -2)

    def gated(self, x, y, gate, P):
        return x + (y.unflatten(-2, (-1, P)) * gate).flatten(-3, -2)

    def finish(self, x, y, m, ctx, P, extra=None):
        """Everything after the self-attention output y (before `o`); `extra`: a term
        added to the self-attention module's output after `o` (the B.6 memory)."""
        y = self.self_attn.o(y)
        if extra is not None:
            y = y + extra
        x = self.gated(x, y, m[2], P)
        x = x + self.cross_attn(self.norm3(x), ctx)
        return self.gated(x, self.ffn(self.modulate(x, m[3], m[4], P)), m[5], P)


class DiT(nn.Module):
    def __init__(self, cfg, memory=True):
        """memory: build the `memory.*` modules, of the form config.json's `memory_type`
        names ("gated_linear" = MEMORY.md B.3 when absent, "gated_delta" = B.6, which
        also reads `memory_horizon`)."""
        super().__init__()
        self.cfg = cfg
        D, H = cfg["dim"], cfg["num_heads"]
        kind = cfg.get("memory_type", "gated_linear") if memory else None
        self.memory_type = kind
        self.dim, self.heads, self.eps = D, H, cfg["eps"]
        self.freq_dim, self.out_dim = cfg["freq_dim"], cfg["out_dim"]
        self.patch_embedding = nn.Conv3d(cfg["in_dim"], D, kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.text_embedding = nn.Sequential(nn.Linear(cfg["text_dim"], D), nn.GELU(approximate="tanh"), nn.Linear(D, D))
        self.time_embedding = nn.Sequential(nn.Linear(cfg["freq_dim"], D), nn.SiLU(), nn.Linear(D, D))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))
        self.blocks = nn.ModuleList(Block(D, cfg["ffn_dim"], H, cfg["eps"], kind, cfg.get("memory_horizon"))
                                    for _ in range(cfg["num_layers"]))
        self.head = nn.Module()
        self.head.head = nn.Linear(D, 4 * cfg["out_dim"])
        self.head.modulation = nn.Parameter(torch.randn(1, 2, D) / D**0.5)

    # ---- pieces shared by both paths -------------------------------------------------
    def embed(self, x):
        """x [..., F, C, h, w] -> tokens [..., F*P, D] (frame, row, column order)."""
        lead = x.shape[:-4]
        y = self.patch_embedding(x.reshape(-1, *x.shape[-3:]).transpose(0, 1).unsqueeze(0))
        y = y[0].flatten(2).transpose(0, 2)  # [P, F', D] with F' = prod(lead)*F
        y = y.transpose(0, 1).reshape(*lead, -1, y.shape[-1])
        return y

    def time(self, t):
        """t [...,F] -> e [...,F,D], e0 [...,F,6,D]."""
        e = self.time_embedding(sinusoid(self.freq_dim, t.reshape(-1))).reshape(*t.shape, self.dim)
        return e, self.time_projection(e).unflatten(-1, (6, self.dim))

    def output(self, x, e, F_, h, w):
        P = (h // 2) * (w // 2)
        shift, scale = (self.head.modulation + e.unsqueeze(-2)).unsqueeze(-2).unbind(-3)
        y = self.head.head((ln(x, self.eps).unflatten(-2, (-1, P)) * (1 + scale) + shift).flatten(-3, -2))
        lead = y.shape[:-2]
        y = y.reshape(*lead, F_, h // 2, w // 2, 2, 2, self.out_dim)  # (pt=1), ph, pw, C
        y = y.permute(*range(len(lead)), -6, -1, -5, -3, -4, -2)
        return y.reshape(*lead, F_, self.out_dim, h, w)

    # ---- the runtime's AR path --------------------------------------------------------
    def step(self, cache, x, t, start, ctx, write):
        """One model call on a chunk x [(B,) F, C, h, w] at timestep t (float) starting at
        latent frame `start`. `write`: the clean context pass (keeps keys/values). With
        a batch dimension, ctx is [B, text_len, text_dim] and the cache holds B streams."""
        F_, _, h, w = x.shape[-4:]
        P = (h // 2) * (w // 2)
        tok = self.embed(x)
        e, e0 = self.time(torch.full(x.shape[:-3], float(t)))
        ctx = self.text_embedding(ctx)
        ang = rope_angles(self.dim // self.heads, list(range(start, start + F_)), h // 2, w // 2)
        frames = torch.arange(start, start + F_).repeat_interleave(P)  # each token's latent frame
        for i, blk in enumerate(self.blocks):
            m = blk.mods(e0)
            xin = blk.modulate(tok, m[0], m[1], P)
            q, k, v, gates = blk.self_attn.project(xin)
            y, r = cache.attend(i, q, k, v, gates, ang, P, write)
            extra = None
            if r is not None:
                y, extra = blk.self_attn.memory.fuse(y, r, gates, frames)
            tok = blk.finish(tok, y.flatten(-2), m, ctx, P, extra)
        return self.output(tok, e, F_, h, w)

    # ---- the training path ------------------------------------------------------------
    def forward_train(self, z_clean, x_noisy, t_noisy, ctx, F_chunk, L, sink):
        """z_clean, x_noisy [B, T, C, h, w] (T a multiple of F_chunk); t_noisy [B, T];
        ctx [B, text_len, text_dim]. Returns the flow predicted for x_noisy as the AR loop
        computes it when the clean stream is the context (teacher forcing): chunk c's
        noisy pass and clean (context) pass both see the clean frames of c's window,
        their own chunk, and S built from the clean tokens evicted before c."""
        B, T, _, h, w = z_clean.shape
        P = (h // 2) * (w // 2)
        N, C = T * P, T // F_chunk
        H, d = self.heads, self.dim // self.heads
        if self.memory_type == "gated_delta":
            check_window(L, sink, F_chunk * P, P)
        plan = chunk_plan(T, F_chunk, L, sink)
        ang = rope_angles(d, list(range(T)), h // 2, w // 2)
        frames = torch.arange(T).repeat_interleave(P).repeat(2)  # both streams: frames 0..T-1
        tok = self.embed(torch.cat([z_clean, x_noisy], 1))  # [B, 2N, D]
        e, e0 = self.time(torch.cat([torch.zeros(B, T), t_noisy], 1))
        ctx = self.text_embedding(ctx)
        for blk in self.blocks:
            m = blk.mods(e0)
            xin = blk.modulate(tok, m[0], m[1], P)
            q, k, v, gates = blk.self_attn.project(xin)  # [B, 2N, H, d]
            a2 = torch.cat([ang, ang])
            y = chunk_attention(rope(q, a2), rope(k, a2), v, plan, B, T, P, F_chunk)
            extra = None
            if gates is not None:
                mem = blk.self_attn.memory
                beta, log_a = gates[0], gates[1]
                kh = F.normalize(k[:, :N], dim=-1)
                qh = F.normalize(q, dim=-1) / math.sqrt(d)
                states = chunk_states if mem.rule == "gated_linear" else chunk_states_delta
                S = states(kh, v[:, :N], beta[:, :N], log_a[:, :N], plan, P)  # [B, C, H, d, d]
                r = torch.einsum("bchde,bschqe->bschqd", S, qh.reshape(B, 2, C, F_chunk * P, H, d).transpose(-2, -3))
                y, extra = mem.fuse(y, r.transpose(-2, -3).reshape(B, 2 * N, H, d), gates, frames)
            tok = blk.finish(tok, y.flatten(-2), m, ctx, P, extra)
        return self.output(tok[:, N:], e[:, T:], T, h, w)


def window_start(c, F_chunk, L, sink):
    """First non-sink frame that chunk c still sees (frames before it, from `sink` on,
    are evicted); L = -1: nothing is evicted."""
    if L < 0:
        return sink
    return max(sink, c * F_chunk + F_chunk - (L - sink))


def chunk_plan(T, F_chunk, L, sink):
    """Per chunk c: the earlier clean frames it sees (sinks, then its window), padded to
    one width with a validity mask, and how many frames from `sink` on are evicted."""
    C = T // F_chunk
    seen = []
    for c in range(C):
        start = c * F_chunk
        seen.append([f for f in range(min(sink, start))] + list(range(window_start(c, F_chunk, L, sink), start)))
    width = max(1, max(len(s) for s in seen))
    idx = torch.zeros(C, width, dtype=torch.long)
    valid = torch.zeros(C, width, dtype=torch.bool)
    for c, s in enumerate(seen):
        idx[c, : len(s)] = torch.tensor(s, dtype=torch.long)
        valid[c, : len(s)] = True
    evicted = torch.tensor([max(0, window_start(c, F_chunk, L, sink) - sink) for c in range(C)])
    return {"idx": idx, "valid": valid, "evicted": evicted, "sink": sink}


def chunk_attention(qr, kr, v, plan, B, T, P, Fc):
    """Self-attention of both streams, chunk by chunk (all chunks at once)."""
    C = T // Fc
    H, d = qr.shape[-2:]
    idx, valid = plan["idx"], plan["valid"]
    W = idx.shape[1]
    # per stream s, chunk c: queries [Fc*P]; keys = clean context frames + own chunk
    q = qr.reshape(B, 2, C, Fc * P, H, d)
    kf = kr.reshape(B, 2, T, P, H, d)
    vf = v.reshape(B, 2, T, P, H, d)
    kc = kf[:, 0][:, idx].reshape(B, 1, C, W * P, H, d).expand(B, 2, C, W * P, H, d)
    vc = vf[:, 0][:, idx].reshape(B, 1, C, W * P, H, d).expand(B, 2, C, W * P, H, d)
    ko = kf.reshape(B, 2, C, Fc * P, H, d)
    vo = vf.reshape(B, 2, C, Fc * P, H, d)
    K = torch.cat([kc, ko], 3).transpose(-2, -3)  # [B, 2, C, H, (W+Fc)P, d]
    V = torch.cat([vc, vo], 3).transpose(-2, -3)
    mask = torch.cat([valid.repeat_interleave(P, 1), torch.ones(C, Fc * P, dtype=torch.bool)], 1)
    y = F.scaled_dot_product_attention(q.transpose(-2, -3), K, V, attn_mask=mask[:, None, None, :])
    return y.transpose(-2, -3).reshape(B, 2 * T * P, H, d)


def chunk_states(kh, v, beta, log_a, plan, P):
    """Parallel form of the SSM: S_c = sum_{j < n_c} (prod_{j < l < n_c} a_l) beta_j v_j k̂_jᵀ
    over the evicted-token order j (clean tokens from sink*P on), n_c = tokens evicted
    before chunk c. Returns [B, C, H, d, d]."""
    s0 = plan["sink"] * P
    kh, v, beta, log_a = kh[:, s0:], v[:, s0:], beta[:, s0:], log_a[:, s0:]
    n = plan["evicted"] * P  # [C]
    cum = torch.cat([torch.zeros_like(log_a[:, :1]), log_a.cumsum(1)], 1)  # [B, M+1, H]
    M = kh.shape[1]
    valid = torch.arange(M)[None, :] < n[:, None]  # [C, M]
    expo = cum[:, n].unsqueeze(2) - cum[:, 1:].unsqueeze(1)  # [B, C, M, H]
    wgt = torch.where(valid[None, :, :, None], torch.exp(expo.clamp(max=0.0)), torch.zeros(()))
    wgt = wgt * beta.unsqueeze(1)
    return torch.einsum("bcmh,bmhd,bmhe->bchde", wgt, v, kh)


def check_window(L, sink, n_new, P):
    """MEMORY.md B.6: the window must hold a whole chunk besides the sinks, or a chunk
    would evict its own tokens before their clean pass cached their gates."""
    if L >= 0 and (L - sink) * P < n_new:
        raise ValueError(f'memory_type "gated_delta" needs local_attn_size - sink_size >= num_frame_per_block '
                         f'(a chunk must fit in the window besides the sinks): L={L}, sink={sink}, '
                         f'chunk={n_new // P} frames')


def chunk_states_delta(kh, v, beta, log_a, plan, P, block=64):
    """B.6 states for the training form: S_c after the n_c = evicted[c]*P first evicted
    clean tokens (from sink*P on, in token order) under the gated delta rule, by the
    chunked WY/UT form (`delta_chunked`). Returns [B, C, H, d, d]."""
    s0 = plan["sink"] * P
    n = (plan["evicted"] * P).tolist()
    B, _, H, d = kh.shape
    if max(n) == 0:
        return kh.new_zeros(B, len(n), H, d, d)
    m = max(n)
    sl = slice(s0, s0 + m)
    S = delta_chunked(kh.new_zeros(B, H, d, d), kh[:, sl], v[:, sl], beta[:, sl], log_a[:, sl], block=block, at=n)
    return S


def delta_chunked(S0, kh, v, beta, log_a, block=64, at=None):
    """Gated delta rule over tokens i = 0..M-1 in order, per head (MEMORY.md B.6):
    u = beta_i (v_i - a_i S k̂_i), S <- a_i S + u k̂_iᵀ, in the chunked WY/UT form.
    S0 [..., H, d, d] (value x key); kh, v [..., M, H, d]; beta, log_a [..., M, H].
    Returns the final state, or with `at` (token counts) the states after each count
    [..., len(at), H, d, d].

    Blocks of at most `block` tokens (cut also at every count in `at`, so the last block
    before a cut may be short; one token is a valid block), padded at their end with
    identity tokens (beta = 0, log a = 0, k = v = 0). Per block, with g_i = sum_{j<=i} ln a_j:
      (I + A) U = diag(beta) (V - diag(e^g) K S0ᵀ),  A_ij = beta_i e^(g_i - g_j) k̂_iᵀk̂_j (j < i),
    solved once for every block in parallel as W = (I+A)^-1 diag(beta e^g) K and
    Ũ = (I+A)^-1 diag(beta) V; then across the blocks in order U = Ũ - W S0ᵀ,
    S = e^(g_C) S0 + Uᵀ diag(e^(g_C - g)) K. Only exponentials of differences g_i - g_j
    with j <= i (never > 0) are taken, never ratios of cumulative products."""
    M, H, d = kh.shape[-3:]
    shape = torch.broadcast_shapes(S0.shape, kh.shape[:-3] + (H, d, d))
    if M == 0:
        return S0.expand(shape) if at is None else torch.stack([S0.expand(shape)] * len(at), -4)
    ends = sorted(set([M] + list(range(block, M, block)) + ([c for c in at if 0 < c < M] if at else [])))
    starts = [0] + ends[:-1]
    nb, Lb = len(ends), max(e - s for s, e in zip(starts, ends))
    t = torch.arange(Lb)
    idx = torch.tensor(starts)[:, None] + t[None]  # [nb, Lb]
    ok = idx < torch.tensor(ends)[:, None]
    idx = idx.clamp(max=M - 1)

    def blocks(x, tail):  # [..., M, (H, d)] -> [..., H, nb, Lb, (d)], padding zeroed
        y = x[(Ellipsis, idx) + (slice(None),) * tail]  # [..., nb, Lb, H, (d)]
        y = torch.where(ok.view(nb, Lb, *([1] * tail)), y, torch.zeros((), dtype=y.dtype))
        return y.movedim(-2, -4) if tail == 2 else y.movedim(-1, -3)

    K, V = blocks(kh, 2), blocks(v, 2)  # [..., H, nb, Lb, d]
    b, la = blocks(beta, 1), blocks(log_a, 1)  # [..., H, nb, Lb]
    g = la.cumsum(-1)
    low = torch.tril(torch.ones(Lb, Lb, dtype=torch.bool))  # j <= i
    dec = torch.exp(torch.where(low, g[..., :, None] - g[..., None, :], torch.full((), -math.inf, dtype=g.dtype)))
    A = b[..., :, None] * dec * (K @ K.transpose(-1, -2))
    A = torch.where(torch.tril(low, -1), A, torch.zeros((), dtype=A.dtype))
    IA = A + torch.eye(Lb, dtype=A.dtype)
    W = torch.linalg.solve_triangular(IA, (b * torch.exp(g))[..., None] * K, upper=False, unitriangular=True)
    Ut = torch.linalg.solve_triangular(IA, b[..., None] * V, upper=False, unitriangular=True)
    gC = g[..., -1:]  # padding has log a = 0, so the last row is the block's total
    KC = torch.exp(gC - g)[..., None] * K  # diag(e^(g_C - g)) K
    S = S0.expand(shape)
    out = {0: S}
    for j in range(nb):
        U = Ut[..., j, :, :] - W[..., j, :, :] @ S.transpose(-1, -2)  # [..., H, Lb, d(value)]
        S = torch.exp(gC[..., j, :])[..., None] * S + U.transpose(-1, -2) @ KC[..., j, :, :]
        out[ends[j]] = S
    if at is None:
        return S
    return torch.stack([out[c] for c in at], -4)


def scan_delta(S, kh, v, beta, log_a):
    """Token-by-token gated delta rule (MEMORY.md B.6), per head: u = beta (v - a S k̂),
    S <- a S + u k̂ᵀ. kh, v [(B,) n, H, d]; beta, log_a [(B,) n, H]; S [(B,) H, d, d]."""
    for j in range(kh.shape[-3]):
        a = torch.exp(log_a[..., j, :])[..., None]  # [..., H, 1]
        k = kh[..., j, :, :]
        u = beta[..., j, :][..., None] * (v[..., j, :, :] - a * torch.einsum("...hde,...he->...hd", S, k))
        S = a[..., None] * S + torch.einsum("...hd,...he->...hde", u, k)
    return S


def _rows(t, idx, tail):
    """t[..., idx, (tail trailing dims)]: cached tokens are rows -3 (keys, values, k̂)
    or -2 (gates) of tensors that may carry a leading batch dimension."""
    return t[(Ellipsis, idx) + (slice(None),) * tail]


class ARCache:
    """Per-block token cache of the AR loop (MODEL.md A.5) plus the SSM state; every
    tensor may carry a leading batch dimension (B independent streams)."""

    TAILS = (2, 1, 1)  # trailing dims of the cached (k̂, beta, log_a)

    def __init__(self, model, L, sink, P, memory=True):
        self.nb = len(model.blocks)
        self.L, self.sink, self.P = L, sink, P
        mem = model.blocks[0].self_attn.memory
        self.memory = memory and mem is not None
        self.rule = mem.rule if self.memory else None
        H = model.heads
        d = model.dim // H
        self.d = d
        self.k = [None] * self.nb  # [(B,) n, H, d] after RoPE
        self.v = [None] * self.nb
        self.mem = [None] * self.nb  # (k̂, beta, log_a) per cached token
        self.S = [torch.zeros(H, d, d) for _ in range(self.nb)]

    def attend(self, i, q, k, v, gates, ang, P, write):
        """Local attention y [..., N, H, d] and, with the memory on, its read r = S q̂
        [..., N, H, d] (else None), S as left after this chunk's evictions."""
        qr, kr = rope(q, ang), rope(k, ang)
        K, V, mem, S = self.k[i], self.v[i], self.mem[i], self.S[i]
        if K is None:
            K, V = _rows(kr, slice(0, 0), 2), _rows(v, slice(0, 0), 2)
        n_old, n_new = K.shape[-3], q.shape[-3]
        if self.rule == "gated_delta":
            check_window(self.L, self.sink, n_new, self.P)
        over = max(0, n_old + n_new - self.L * self.P) if self.L >= 0 else 0
        if over > 0:
            # the chunk's arrival evicts the oldest non-sink tokens; they enter S in token order
            s0 = min(self.sink * self.P, n_old)
            ev = slice(s0, s0 + over)
            if self.memory:
                kh, beta, log_a = (_rows(m, ev, t) for m, t in zip(mem, self.TAILS))
                write_rule = scan if self.rule == "gated_linear" else scan_delta
                S = write_rule(S, kh, _rows(V, ev, 2), beta, log_a)
            keep = torch.cat([torch.arange(s0), torch.arange(s0 + over, n_old)])
            K, V = _rows(K, keep, 2), _rows(V, keep, 2)
            mem = tuple(_rows(m, keep, t) for m, t in zip(mem, self.TAILS)) if mem is not None else None
        K, V = torch.cat([K, kr], -3), torch.cat([V, v], -3)
        att = torch.einsum("...ihd,...jhd->...hij", qr, K) / math.sqrt(self.d)
        y = torch.einsum("...hij,...jhd->...ihd", att.softmax(-1), V)
        r = None
        if self.memory:
            qh = F.normalize(q, dim=-1) / math.sqrt(self.d)
            r = torch.einsum("...hde,...ihe->...ihd", S, qh)
        if write:
            # the clean context pass keeps its keys/values and gates, and the state
            self.k[i], self.v[i], self.S[i] = K, V, S
            if self.memory:
                new = (F.normalize(k, dim=-1), gates[0], gates[1])
                self.mem[i] = new if mem is None else tuple(torch.cat([a, b], -1 - t) for a, b, t in zip(mem, new, self.TAILS))
        return y, r


def scan(S, kh, v, beta, log_a):
    """Token-by-token S <- a S + beta v k̂ᵀ (per head). kh, v [(B,) n, H, d]; beta, log_a [(B,) n, H]."""
    for j in range(kh.shape[-3]):
        S = torch.exp(log_a[..., j, :])[..., None, None] * S + beta[..., j, :][..., None, None] * torch.einsum(
            "...hd,...he->...hde", v[..., j, :, :], kh[..., j, :, :])
    return S
