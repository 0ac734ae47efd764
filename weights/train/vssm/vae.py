"""The Wan-VAE layout causal video autoencoder (spec/TEXT_VAE.md C.2), whole-sequence form.

Tensors are [B, C, T, H, W]. Causal convs pad with two zero frames in front; the
temporal resamples treat the video's first frame apart (it is not doubled on the way
up, and it is the only frame of its group on the way down), exactly as the official
chunked (first frame, then 4 at a time) code does.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalConv3d(nn.Conv3d):
    def __init__(self, cin, cout, k, stride=1, padding=0):
        super().__init__(cin, cout, k, stride=stride)
        p = (padding,) * 3 if isinstance(padding, int) else padding
        self.pads = (p[2], p[2], p[1], p[1], 2 * p[0], 0)

    def forward(self, x):
        return super().forward(F.pad(x, self.pads))


class RMSNormC(nn.Module):
    """Channel RMS norm with gamma (scale sqrt(C)); images=True -> gamma [C,1,1]."""

    def __init__(self, dim, images=False):
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim, 1, 1) if images else torch.ones(dim, 1, 1, 1))

    def forward(self, x):
        return F.normalize(x, dim=1) * self.scale * self.gamma


class ResidualBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.residual = nn.Sequential(
            RMSNormC(cin), nn.SiLU(), CausalConv3d(cin, cout, 3, padding=1),
            RMSNormC(cout), nn.SiLU(), nn.Dropout(0.0), CausalConv3d(cout, cout, 3, padding=1))
        self.shortcut = CausalConv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.shortcut(x) + self.residual(x)


class AttentionBlock(nn.Module):
    """Single-head attention over the pixels of each frame."""

    def __init__(self, dim):
        super().__init__()
        self.norm = RMSNormC(dim, images=True)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        b, c, t, h, w = x.shape
        y = x.transpose(1, 2).reshape(b * t, c, h, w)
        q, k, v = self.to_qkv(self.norm(y)).reshape(b * t, 3 * c, h * w).transpose(1, 2).chunk(3, dim=-1)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b * t, c, h, w)
        y = self.proj(y).reshape(b, t, c, h, w).transpose(1, 2)
        return x + y


def per_frame(fn, x):
    b, c, t, h, w = x.shape
    y = fn(x.transpose(1, 2).reshape(b * t, c, h, w))
    return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


class Resample(nn.Module):
    def __init__(self, dim, mode):
        super().__init__()
        self.mode = mode
        if mode.startswith("up"):
            self.resample = nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(dim, dim // 2, 3, padding=1))
        else:
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=2))
        if mode == "upsample3d":
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode == "downsample3d":
            self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))

    def forward(self, x):
        if self.mode == "upsample3d" and x.shape[2] > 1:
            # frame 0 passes; later frames look back with frame 0 counted as zero
            b, c, t, h, w = x.shape
            y = self.time_conv(x[:, :, 1:]).reshape(b, 2, c, t - 1, h, w)
            y = torch.stack([y[:, 0], y[:, 1]], 3).reshape(b, c, 2 * (t - 1), h, w)
            x = torch.cat([x[:, :, :1], y], 2)
        x = per_frame(self.resample, x)
        if self.mode == "downsample3d" and x.shape[2] > 1:
            x = torch.cat([x[:, :, :1], self.time_conv(x)], 2)
        return x


class Encoder3d(nn.Module):
    def __init__(self, dim, z2, dim_mult, nres, tdown):
        super().__init__()
        dims = [dim * u for u in [1] + dim_mult]
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        down = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(nres):
                down.append(ResidualBlock(a, b))
                a = b
            if i != len(dim_mult) - 1:
                down.append(Resample(b, "downsample3d" if tdown[i] else "downsample2d"))
        self.downsamples = nn.Sequential(*down)
        self.middle = nn.Sequential(ResidualBlock(dims[-1], dims[-1]), AttentionBlock(dims[-1]), ResidualBlock(dims[-1], dims[-1]))
        self.head = nn.Sequential(RMSNormC(dims[-1]), nn.SiLU(), CausalConv3d(dims[-1], z2, 3, padding=1))

    def forward(self, x):
        return self.head(self.middle(self.downsamples(self.conv1(x))))


class Decoder3d(nn.Module):
    def __init__(self, dim, z_dim, dim_mult, nres, tup):
        super().__init__()
        dims = [dim * u for u in [dim_mult[-1]] + dim_mult[::-1]]
        self.conv1 = CausalConv3d(z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(ResidualBlock(dims[0], dims[0]), AttentionBlock(dims[0]), ResidualBlock(dims[0], dims[0]))
        up = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            if i in (1, 2, 3):
                a = a // 2
            for _ in range(nres + 1):
                up.append(ResidualBlock(a, b))
                a = b
            if i != len(dim_mult) - 1:
                up.append(Resample(b, "upsample3d" if tup[i] else "upsample2d"))
        self.upsamples = nn.Sequential(*up)
        self.head = nn.Sequential(RMSNormC(dims[-1]), nn.SiLU(), CausalConv3d(dims[-1], 3, 3, padding=1))

    def forward(self, x):
        return self.head(self.upsamples(self.middle(self.conv1(x))))


class WanVAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        dim, z = cfg["dim"], cfg["z_dim"]
        dm, nres, td = cfg["dim_mult"], cfg["num_res_blocks"], cfg["temperal_downsample"]
        self.encoder = Encoder3d(dim, 2 * z, dm, nres, td)
        self.conv1 = CausalConv3d(2 * z, 2 * z, 1)
        self.conv2 = CausalConv3d(z, z, 1)
        self.decoder = Decoder3d(dim, z, dm, nres, td[::-1])
        self.register_buffer("mean", torch.tensor(cfg.get("latent_mean", [0.0] * z)), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("latent_std", [1.0] * z)), persistent=False)

    def encode_raw(self, x):
        """x [B, 3, 1+4k, H, W] in [-1, 1] -> mu, log_var in the VAE's own scale."""
        return self.conv1(self.encoder(x)).chunk(2, dim=1)

    def decode_raw(self, z):
        return self.decoder(self.conv2(z))

    def normalise(self, mu):
        return (mu - self.mean.view(1, -1, 1, 1, 1)) / self.std.view(1, -1, 1, 1, 1)

    def decode(self, z):
        """z [B, z_dim, F, h, w] normalised (the generator's space) -> video in [-1, 1]."""
        z = z * self.std.view(1, -1, 1, 1, 1) + self.mean.view(1, -1, 1, 1, 1)
        return self.decode_raw(z).clamp(-1, 1)


class PatchEncoder(nn.Module):
    """The training-time encoder: 8x8 pixel patches of each group of frames (frame 0
    alone, repeated 4x; then 4 frames at a time, the Wan grouping) through three plain
    convs to z_dim channels. The Wan-layout encoder (RMS norms, ~30 convs) would not train
    in the CPU budget; only the decoder is needed at run time, and it is the Wan one."""

    def __init__(self, z_dim, width=128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(4 * 3 * 64, width, 1), nn.GELU(), nn.Conv2d(width, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, z_dim, 1))

    def forward(self, x):
        """x [B, 3, 1+4k, H, W] -> [B, z_dim, 1+k, H/8, W/8]."""
        b, c, t, h, w = x.shape
        x = torch.cat([x[:, :, :1].expand(b, c, 4, h, w), x[:, :, 1:]], 2)  # [B, 3, 4(k+1), H, W]
        g = x.shape[2] // 4
        x = x.reshape(b, c, g, 4, h // 8, 8, w // 8, 8).permute(0, 2, 1, 3, 5, 7, 4, 6)
        x = x.reshape(b * g, c * 4 * 64, h // 8, w // 8)
        z = self.net(x)
        return z.reshape(b, g, *z.shape[1:]).transpose(1, 2)
