"""umT5-layout encoder (spec/TEXT_VAE.md C.1) and the tiny world tokenizer."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# T5 layer norm = RMSNorm (no mean, no bias), the same module as the DiT's q/k norms.
from .dit import RMSNorm as T5Norm


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class RelPos(nn.Module):
    """Bidirectional bucketed relative-position bias, one table per layer."""

    def __init__(self, num_buckets, heads, max_dist=128):
        super().__init__()
        self.num_buckets, self.max_dist = num_buckets, max_dist
        self.embedding = nn.Embedding(num_buckets, heads)

    def forward(self, lq, lk):
        rel = torch.arange(lk)[None, :] - torch.arange(lq)[:, None]
        nb = self.num_buckets // 2
        bucket = (rel > 0).long() * nb
        rel = rel.abs()
        exact = nb // 2
        large = exact + (torch.log(rel.float() / exact) / math.log(self.max_dist / exact) * (nb - exact)).long()
        large = large.clamp(max=nb - 1)
        bucket = bucket + torch.where(rel < exact, rel, large)
        return self.embedding(bucket).permute(2, 0, 1).unsqueeze(0)  # [1, H, lq, lk]


class Attn(nn.Module):
    def __init__(self, dim, dim_attn, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim_attn, bias=False)
        self.k = nn.Linear(dim, dim_attn, bias=False)
        self.v = nn.Linear(dim, dim_attn, bias=False)
        self.o = nn.Linear(dim_attn, dim, bias=False)

    def forward(self, x, mask, bias):
        b, n, _ = x.shape
        q, k, v = (p(x).view(b, n, self.heads, -1) for p in (self.q, self.k, self.v))
        a = torch.einsum("binc,bjnc->bnij", q, k) + bias
        a = a.masked_fill(mask.view(b, 1, 1, -1) == 0, torch.finfo(x.dtype).min)
        y = torch.einsum("bnij,bjnc->binc", a.float().softmax(-1).type_as(x), v)
        return self.o(y.reshape(b, n, -1))


class FFN(nn.Module):
    def __init__(self, dim, dim_ffn):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(dim, dim_ffn, bias=False))
        self.fc1 = nn.Linear(dim, dim_ffn, bias=False)
        self.fc2 = nn.Linear(dim_ffn, dim, bias=False)

    def forward(self, x):
        return self.fc2(self.fc1(x) * gelu_tanh(self.gate(x)))


class T5Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm1 = T5Norm(cfg["dim"])
        self.attn = Attn(cfg["dim"], cfg["dim_attn"], cfg["num_heads"])
        self.norm2 = T5Norm(cfg["dim"])
        self.ffn = FFN(cfg["dim"], cfg["dim_ffn"])
        self.pos_embedding = RelPos(cfg["num_buckets"], cfg["num_heads"])

    def forward(self, x, mask):
        bias = self.pos_embedding(x.shape[1], x.shape[1])
        x = x + self.attn(self.norm1(x), mask, bias)
        return x + self.ffn(self.norm2(x))


class T5Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert not cfg["shared_pos"]
        self.token_embedding = nn.Embedding(cfg["vocab"], cfg["dim"])
        self.blocks = nn.ModuleList(T5Block(cfg) for _ in range(cfg["num_layers"]))
        self.norm = T5Norm(cfg["dim"])

    def forward(self, ids, mask):
        """ids, mask [B, L] -> [B, L, dim] with the padding rows zeroed."""
        x = self.token_embedding(ids)
        for blk in self.blocks:
            x = blk(x, mask)
        return self.norm(x) * mask.unsqueeze(-1).to(x.dtype)


# ---- tokenizer ---------------------------------------------------------------------------
SPECIALS = ["<pad>", "</s>", "<unk>"]


def build_tokenizer(words):
    """A WordLevel tokenizer.json (HF `tokenizers` format): <pad>=0, </s>=1, <unk>=2,
    lower-cased, split on whitespace and punctuation. EOS and padding are added by the
    caller (as the runtime's umT5 wrapper does), not by the file."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {t: i for i, t in enumerate(SPECIALS + sorted(set(words)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


def encode_prompt(tok, prompt, text_len):
    """ids, mask [text_len] as the runtime builds them: tokens, </s>, <pad>..."""
    ids = tok.encode(" ".join(prompt.split()), add_special_tokens=False).ids[: text_len - 1]
    ids = ids + [tok.token_to_id("</s>")]
    n = len(ids)
    ids = ids + [tok.token_to_id("<pad>")] * (text_len - n)
    return torch.tensor(ids), torch.tensor([1] * n + [0] * (text_len - n))
