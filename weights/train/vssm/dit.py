"""The causal Wan DiT with the VideoSSM memory, written from spec/MODEL.md and spec/MEMORY.md.

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
    """MEMORY.md B.3: per-head injection gate beta, decay a, router gate g."""

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


class SelfAttn(nn.Module):
    def __init__(self, dim, heads, eps, memory):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(dim, eps), RMSNorm(dim, eps)
        self.memory = Memory(dim, heads) if memory else None

    def project(self, x):
        """q, k (normed, before RoPE), v as [..., N, H, d]; memory gates [..., N, H]."""
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
    def __init__(self, dim, ffn_dim, heads, eps, memory):
        super().__init__()
        self.eps = eps
        self.self_attn = SelfAttn(dim, heads, eps, memory)
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

    def finish(self, x, y, m, ctx, P):
        """Everything after the self-attention output y (before `o`)."""
        x = self.gated(x, self.self_attn.o(y), m[2], P)
        x = x + self.cross_attn(self.norm3(x), ctx)
        return self.gated(x, self.ffn(self.modulate(x, m[3], m[4], P)), m[5], P)


class DiT(nn.Module):
    def __init__(self, cfg, memory=True):
        super().__init__()
        self.cfg = cfg
        D, H = cfg["dim"], cfg["num_heads"]
        self.dim, self.heads, self.eps = D, H, cfg["eps"]
        self.freq_dim, self.out_dim = cfg["freq_dim"], cfg["out_dim"]
        self.patch_embedding = nn.Conv3d(cfg["in_dim"], D, kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.text_embedding = nn.Sequential(nn.Linear(cfg["text_dim"], D), nn.GELU(approximate="tanh"), nn.Linear(D, D))
        self.time_embedding = nn.Sequential(nn.Linear(cfg["freq_dim"], D), nn.SiLU(), nn.Linear(D, D))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))
        self.blocks = nn.ModuleList(Block(D, cfg["ffn_dim"], H, cfg["eps"], memory) for _ in range(cfg["num_layers"]))
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
        for i, blk in enumerate(self.blocks):
            m = blk.mods(e0)
            xin = blk.modulate(tok, m[0], m[1], P)
            q, k, v, gates = blk.self_attn.project(xin)
            y = cache.attend(i, q, k, v, gates, ang, P, write)
            tok = blk.finish(tok, y.flatten(-2), m, ctx, P)
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
        plan = chunk_plan(T, F_chunk, L, sink)
        ang = rope_angles(d, list(range(T)), h // 2, w // 2)
        tok = self.embed(torch.cat([z_clean, x_noisy], 1))  # [B, 2N, D]
        e, e0 = self.time(torch.cat([torch.zeros(B, T), t_noisy], 1))
        ctx = self.text_embedding(ctx)
        for blk in self.blocks:
            m = blk.mods(e0)
            xin = blk.modulate(tok, m[0], m[1], P)
            q, k, v, gates = blk.self_attn.project(xin)  # [B, 2N, H, d]
            a2 = torch.cat([ang, ang])
            y = chunk_attention(rope(q, a2), rope(k, a2), v, plan, B, T, P, F_chunk)
            if gates is not None:
                beta, log_a, g = gates
                kh = F.normalize(k[:, :N], dim=-1)
                qh = F.normalize(q, dim=-1) / math.sqrt(d)
                S = chunk_states(kh, v[:, :N], beta[:, :N], log_a[:, :N], plan, P)  # [B, C, H, d, d]
                r = torch.einsum("bchde,bschqe->bschqd", S, qh.reshape(B, 2, C, F_chunk * P, H, d).transpose(-2, -3))
                y = y + g.unsqueeze(-1) * r.transpose(-2, -3).reshape(B, 2 * N, H, d)
            tok = blk.finish(tok, y.flatten(-2), m, ctx, P)
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
        self.memory = memory and model.blocks[0].self_attn.memory is not None
        H = model.heads
        d = model.dim // H
        self.d = d
        self.k = [None] * self.nb  # [(B,) n, H, d] after RoPE
        self.v = [None] * self.nb
        self.mem = [None] * self.nb  # (k̂, beta, log_a) per cached token
        self.S = [torch.zeros(H, d, d) for _ in range(self.nb)]

    def attend(self, i, q, k, v, gates, ang, P, write):
        qr, kr = rope(q, ang), rope(k, ang)
        K, V, mem, S = self.k[i], self.v[i], self.mem[i], self.S[i]
        if K is None:
            K, V = _rows(kr, slice(0, 0), 2), _rows(v, slice(0, 0), 2)
        n_old, n_new = K.shape[-3], q.shape[-3]
        over = max(0, n_old + n_new - self.L * self.P) if self.L >= 0 else 0
        if over > 0:
            # the chunk's arrival evicts the oldest non-sink tokens; they enter S
            s0 = min(self.sink * self.P, n_old)
            ev = slice(s0, s0 + over)
            if self.memory:
                kh, beta, log_a = (_rows(m, ev, t) for m, t in zip(mem, self.TAILS))
                S = scan(S, kh, _rows(V, ev, 2), beta, log_a)
            keep = torch.cat([torch.arange(s0), torch.arange(s0 + over, n_old)])
            K, V = _rows(K, keep, 2), _rows(V, keep, 2)
            mem = tuple(_rows(m, keep, t) for m, t in zip(mem, self.TAILS)) if mem is not None else None
        K, V = torch.cat([K, kr], -3), torch.cat([V, v], -3)
        att = torch.einsum("...ihd,...jhd->...hij", qr, K) / math.sqrt(self.d)
        y = torch.einsum("...hij,...jhd->...ihd", att.softmax(-1), V)
        if self.memory:
            qh = F.normalize(q, dim=-1) / math.sqrt(self.d)
            y = y + gates[2].unsqueeze(-1) * torch.einsum("...hde,...ihe->...ihd", S, qh)
        if write:
            # the clean context pass keeps its keys/values and gates, and the state
            self.k[i], self.v[i], self.S[i] = K, V, S
            if self.memory:
                new = (F.normalize(k, dim=-1), gates[0], gates[1])
                self.mem[i] = new if mem is None else tuple(torch.cat([a, b], -1 - t) for a, b, t in zip(mem, new, self.TAILS))
        return y


def scan(S, kh, v, beta, log_a):
    """Token-by-token S <- a S + beta v k̂ᵀ (per head). kh, v [(B,) n, H, d]; beta, log_a [(B,) n, H]."""
    for j in range(kh.shape[-3]):
        S = torch.exp(log_a[..., j, :])[..., None, None] * S + beta[..., j, :][..., None, None] * torch.einsum(
            "...hd,...he->...hde", v[..., j, :, :], kh[..., j, :, :])
    return S
