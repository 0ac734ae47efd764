"""Trains the tiny VideoSSM from scratch and exports it (see README.md).

    python weights/train/train.py --out weights/tiny

Stages (each resumable: its result is kept in --work, the generator stages also
checkpoint every 100 steps and resume from there): tokenizer + frozen random T5,
autoencoder, latent pool, decoder fine-tune (encoder frozen), teacher (many-step flow
model), its ODE trajectories, the few-step student regressed on them, export. `dit`
(the earlier few-step generator trained directly) and `roll` remain as optional stages.
Everything is seeded; step counts (not
wall time) decide the result.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vssm import world  # noqa: E402
from vssm.dit import DiT  # noqa: E402
from vssm.t5 import T5Encoder, build_tokenizer, encode_prompt  # noqa: E402
from vssm.vae import PatchEncoder, WanVAE  # noqa: E402

T5_CFG = {"vocab": 32, "dim": 32, "dim_attn": 32, "dim_ffn": 64, "num_heads": 4, "num_layers": 2,
          "num_buckets": 32, "shared_pos": False, "dropout": 0.0}
VAE_CFG = {"dim": 8, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 1, "attn_scales": [],
           "temperal_downsample": [False, True, True], "dropout": 0.0}
DIT_CFG = {"model_type": "t2v", "patch_size": [1, 2, 2], "text_len": 24, "in_dim": 16, "dim": 128,
           "ffn_dim": 384, "freq_dim": 64, "text_dim": 32, "out_dim": 16, "num_heads": 4, "num_layers": 4,
           "window_size": [-1, -1], "qk_norm": True, "cross_attn_norm": True, "eps": 1e-06,
           "local_attn_size": 9, "sink_size": 0, "memory_type": "gated_delta", "memory_horizon": 24}
GEN = {"num_frame_per_block": 3, "denoising_step_list": [1000, 800, 600, 400, 200], "warp_denoising_step": True,
       "timestep_shift": 1.0, "num_train_timestep": 1000, "context_noise": 0,
       "latent_height": 8, "latent_width": 8, "num_latent_frames": 240}
CLIP_LATENTS = 24  # training sequence: 8 chunks, 93 video frames (5.8 s)
MINUTE = 16 * 60  # video frames the pool's clips are drawn from


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def cosine(step, total, peak, warm=50, floor=0.05):
    if step < warm:
        return peak * (step + 1) / warm
    p = (step - warm) / max(1, total - warm)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


# ---- text -------------------------------------------------------------------------------
def stage_text(work, seed):
    tok = build_tokenizer(world.WORDS)
    tok.save(os.path.join(work, "tokenizer.json"))
    assert tok.get_vocab_size() <= T5_CFG["vocab"]
    torch.manual_seed(seed)
    t5 = T5Encoder(T5_CFG)
    # a frozen random encoder: the generator learns to read it
    save_file({k: v.contiguous() for k, v in t5.state_dict().items()}, os.path.join(work, "t5.safetensors"))


def text_encoder(work):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(work, "tokenizer.json"))
    t5 = T5Encoder(T5_CFG)
    t5.load_state_dict(load_file(os.path.join(work, "t5.safetensors")))
    t5.eval()
    cache = {}

    @torch.no_grad()
    def embed(prompt):
        if prompt not in cache:
            ids, mask = encode_prompt(tok, prompt, DIT_CFG["text_len"])
            cache[prompt] = t5(ids[None], mask[None])[0]
        return cache[prompt]

    return embed


# ---- autoencoder ------------------------------------------------------------------------
def vae_batch(seed, batch, frames, crop=32):
    """Clips cropped to crop x crop around a random sprite (the convs do not care about
    the size; sprites, not background, are what is hard to learn), and a loss weight
    that counts sprite pixels 5x."""
    xs, ws = [], []
    rng = np.random.default_rng(seed)
    for b in range(batch):
        f, _, gt = world.clip(seed * 131 + b, frames, skip=int(rng.integers(MINUTE)))
        shown = np.nonzero(gt["visible"][frames // 2])[0]  # a sprite in the bay has no pixels to crop
        i = rng.choice(shown) if len(shown) else rng.integers(len(gt["objs"]))
        cx, cy = gt["centres"][frames // 2, i] + rng.uniform(-10, 10, 2)
        x0 = int(np.clip(cx - crop / 2, 0, world.SIZE - crop))
        y0 = int(np.clip(cy - crop / 2, 0, world.SIZE - crop))
        x = world.to_tensor(f[:, y0:y0 + crop, x0:x0 + crop])
        bg = torch.tensor(world.BACKGROUNDS[gt["bg"]], dtype=torch.float32).view(3, 1, 1, 1) / 127.5 - 1
        ws.append(1 + 4 * ((x - bg).abs().amax(0, keepdim=True) > 0.05).float())
        xs.append(x)
    return torch.stack(xs), torch.stack(ws)


def zero_init_residuals(vae):
    """Every residual branch (last conv) and the attention projections start at zero, so
    the ~30-conv autoencoder starts as its short shortcut path and learns fast."""
    from vssm.vae import AttentionBlock, ResidualBlock

    for m in vae.modules():
        last = m.residual[-1] if isinstance(m, ResidualBlock) else m.proj if isinstance(m, AttentionBlock) else None
        if last is not None:
            torch.nn.init.zeros_(last.weight)
            torch.nn.init.zeros_(last.bias)


def stage_vae(work, seed, steps, lr=1e-3):
    """The Wan-layout decoder (zero-initialised residual branches) trained jointly with
    the plain PatchEncoder: alternating steps of 16 single frames and of 4 clips of 5
    frames (the temporal convs), 32x32 crops around a sprite, sprite pixels weighted 5x."""
    torch.manual_seed(seed)
    vae = WanVAE(VAE_CFG)
    zero_init_residuals(vae)
    enc = PatchEncoder(VAE_CFG["z_dim"])
    vae.encode_raw = lambda x: (enc(x), None)
    params = list(enc.parameters()) + list(vae.conv2.parameters()) + list(vae.decoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    t0 = time.time()
    for step in range(steps):
        for gq in opt.param_groups:
            gq["lr"] = cosine(step, steps, lr, warm=20, floor=0.2)
        batch, frames = (4, 5) if step % 2 else (16, 1)
        x, wgt = vae_batch(seed * 10**6 + step, batch, frames)
        mu, _ = vae.encode_raw(x)
        # decoder robustness: the generator's latents are never exact
        z = mu + 0.05 * mu.detach().std() * torch.randn_like(mu)
        y = vae.decode_raw(z)
        loss = (wgt * ((y - x).pow(2) + 0.5 * (y - x).abs())).mean() + 1e-4 * mu.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if (step + 1) % 250 == 0 or step == steps - 1:
            save_vae(work, vae, enc, seed)
        if step % 50 == 0 or step == steps - 1:
            log(f"vae {step}/{steps} loss {loss.item():.4f} mse {F.mse_loss(y, x).item():.4f} ({time.time() - t0:.0f}s)")
    log(f"vae done in {time.time() - t0:.0f}s")


def save_vae(work, vae, enc, seed):
    # per-channel statistics of the latents: the generator works in the normalised space
    with torch.no_grad():
        mus = torch.cat([vae.encode_raw(world.to_tensor(world.clip(seed + 777 + i, 9, skip=8 * i)[0])[None])[0] for i in range(32)])
    mean = mus.mean(dim=(0, 2, 3, 4))
    std = mus.std(dim=(0, 2, 3, 4))
    cfg = dict(VAE_CFG, latent_mean=[round(float(v), 6) for v in mean], latent_std=[round(float(v), 6) for v in std])
    json.dump(cfg, open(os.path.join(work, "vae_config.json"), "w"), indent=1)
    # the runtime needs conv2.* and decoder.*; the Wan-layout encoder is not trained
    sd = {k: v.contiguous() for k, v in vae.state_dict().items() if not k.startswith(("encoder.", "conv1."))}
    save_file(sd, os.path.join(work, "vae.safetensors"))
    save_file({k: v.contiguous() for k, v in enc.state_dict().items()}, os.path.join(work, "encoder.safetensors"))


def stage_decoder(work, seed, steps, stop=None, lr=5e-4):
    """Fine-tunes conv2 + the decoder with the encoder frozen: the latent space (and so
    the pool the generator trains on) stays the same. Runs beside the generator."""
    torch.manual_seed(seed + 5)
    vae = load_vae(work)
    params = list(vae.conv2.parameters()) + list(vae.decoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    t0 = time.time()
    stop = steps if stop is None else stop
    for step in range(stop):
        for gq in opt.param_groups:
            gq["lr"] = cosine(step, steps, lr, warm=20, floor=0.1)
        # clips of 4 and 10 latent frames: the causal convs reach back about 20 latent
        # frames, and the autoencoder stage only showed them 2
        batch, frames = [(16, 1), (3, 13), (2, 37)][step % 3]
        x, wgt = vae_batch(seed * 10**6 + 5 * 10**5 + step, batch, frames)
        with torch.no_grad():
            mu, _ = vae.encode_raw(x)
        y = vae.decode_raw(mu + 0.05 * mu.std() * torch.randn_like(mu))
        loss = (wgt * ((y - x).pow(2) + 0.5 * (y - x).abs())).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 25 == 0 or step == stop - 1:
            log(f"decoder {step}/{steps} loss {loss.item():.4f} mse {F.mse_loss(y, x).item():.4f} ({time.time() - t0:.0f}s)")
        if (step + 1) % 200 == 0 or step == stop - 1:
            sd = {k: v.contiguous() for k, v in vae.state_dict().items() if not k.startswith(("encoder.", "conv1."))}
            save_file(sd, os.path.join(work, "vae.safetensors"))
    log(f"decoder done in {time.time() - t0:.0f}s")


def load_vae(work):
    cfg = json.load(open(os.path.join(work, "vae_config.json")))
    vae = WanVAE(cfg)
    vae.load_state_dict(load_file(os.path.join(work, "vae.safetensors")), strict=False)
    enc = PatchEncoder(cfg["z_dim"])
    enc.load_state_dict(load_file(os.path.join(work, "encoder.safetensors")))
    vae.encode_raw = lambda x: (enc(x), None)
    return vae.eval()


# ---- latent pool ------------------------------------------------------------------------
def sprite_mask(f, bg):
    """uint8 frames [1+4k, H, W, 3] -> [1+k, H/8, W/8] float: 1 where a latent pixel's
    group of frames (frame 0 alone, then 4 at a time) shows any sprite pixel."""
    m = (np.abs(f.astype(np.int16) - np.array(world.BACKGROUNDS[bg])).max(-1) > 16)
    m = np.concatenate([m[:1], m[1:].reshape(-1, 4, *m.shape[1:]).any(1)])
    k, H, W = m.shape
    return torch.from_numpy(m.reshape(k, H // 8, 8, W // 8, 8).any((2, 4)).astype(np.float32))


def stage_pool(work, seed, clips, start_share=0.25):
    """`start_share` of the clips start the video (the first chunk's examples); the others
    start at a random latent frame of its first minute, so the generator learns each
    trajectory all along. Those are encoded with one frame group more and lose their
    first (single-frame) latent: every latent frame is then the 4-frame group that the
    runtime's context holds at that point (only a video's first latent is one frame)."""
    vae = load_vae(work)
    embed = text_encoder(work)
    frames = 1 + 4 * (CLIP_LATENTS - 1)
    rng = np.random.default_rng(seed + 3)
    offsets = [0 if rng.random() < start_share else 4 * int(rng.integers(1, (MINUTE - frames) // 4)) for _ in range(clips)]
    lat, ctx, masks, prompts, kept = [], [], [], [], []
    t0 = time.time()
    with torch.no_grad():
        for i in range(0, clips, 8):
            for later in (False, True):  # one encoder call per clip length
                group = [j for j in range(i, min(clips, i + 8)) if (offsets[j] > 0) == later]
                if not group:
                    continue
                o, vids = int(later), []
                for j in group:
                    # from frame s = offsets[j]: the latent after the single-frame one
                    # covers frames s+1 .. s+4, the video's latent frame s/4 + 1
                    f, p, gt = world.clip(seed * 10**7 + 10**6 + j, frames + 4 * o, skip=offsets[j])
                    vids.append(world.to_tensor(f))
                    masks.append(sprite_mask(f, gt["bg"])[o:])
                    prompts.append(p)
                    ctx.append(embed(p))
                    kept.append(offsets[j])
                mu, _ = vae.encode_raw(torch.stack(vids))
                lat.append(vae.normalise(mu).transpose(1, 2)[:, o:].contiguous())  # [B, T, C, h, w]
            if i % 80 == 0:
                log(f"pool {i}/{clips} ({time.time() - t0:.0f}s)")
    save_file({"latents": torch.cat(lat), "context": torch.stack(ctx), "sprites": torch.stack(masks),
               "offsets": torch.tensor(kept)},
              os.path.join(work, "pool.safetensors"))
    json.dump(prompts, open(os.path.join(work, "pool_prompts.json"), "w"))
    log(f"pool done in {time.time() - t0:.0f}s")


# ---- generator --------------------------------------------------------------------------
def init_memory(model):
    for blk in model.blocks:
        mem = blk.self_attn.memory
        with torch.no_grad():
            mem.alpha.bias.fill_(0.0)
            mem.A_log.fill_(math.log(0.005))  # ~0.9 decay per latent frame (16 tokens)
            if mem.rule == "gated_linear":
                mem.beta.bias.fill_(-2.0)    # weak writes to start with
                mem.gate.bias.fill_(-1.0)
            else:  # gated_delta (B.6): beta has no bias; the router starts mostly closed
                mem.router.bias.fill_(-1.0)


class Trainer:
    """What every generator stage shares: AdamW on a cosine schedule, gradient clipping,
    an EMA of the weights (what is exported), a log line every 25 steps, and a checkpoint
    in the work folder every 100 steps (weights, EMA, optimiser, step and the stage's
    random generator), from which a killed run resumes where it was."""

    def __init__(self, work, name, model, steps, lr, warm, g, ema_decay=0.995):
        self.work, self.name, self.model, self.steps, self.lr, self.warm, self.g = work, name, model, steps, lr, warm, g
        self.decay = ema_decay
        self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.start, self.avg, self.t0 = 0, None, time.time()
        self.path = os.path.join(work, f"ckpt_{name}.pt")
        if os.path.exists(self.path):
            ck = torch.load(self.path, weights_only=False)
            model.load_state_dict(ck["model"])
            self.opt.load_state_dict(ck["opt"])
            self.ema, self.start, self.avg = ck["ema"], ck["step"], ck["avg"]
            g.set_state(ck["rng"])
            log(f"{name}: resumed at step {self.start}")

    def run(self, loss_of, stop=None):
        """loss_of(step) -> the step's loss; stop < steps ends early on the same schedule."""
        stop = self.steps if stop is None else stop
        for step in range(self.start, stop):
            for gq in self.opt.param_groups:
                gq["lr"] = cosine(step, self.steps, self.lr, warm=self.warm)
            loss = loss_of(step)
            self.opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            with torch.no_grad():
                d = min(self.decay, (1 + step) / (10 + step))
                for k, p in self.model.state_dict().items():
                    self.ema[k].mul_(d).add_(p, alpha=1 - d)
            self.avg = loss.item() if self.avg is None else 0.98 * self.avg + 0.02 * loss.item()
            if step % 25 == 0 or step == stop - 1:
                log(f"{self.name} {step}/{self.steps} loss {loss.item():.4f} ema {self.avg:.4f} ({time.time() - self.t0:.0f}s)")
            if (step + 1) % 100 == 0 or step == stop - 1:
                torch.save({"model": self.model.state_dict(), "opt": self.opt.state_dict(), "ema": self.ema,
                            "step": step + 1, "avg": self.avg, "rng": self.g.get_state()}, self.path)
        if stop == self.steps:
            save_file({k: v.contiguous() for k, v in self.ema.items()}, os.path.join(self.work, f"model_{self.name}.safetensors"))
        log(f"{self.name} done to step {stop} in {time.time() - self.t0:.0f}s")


def generator(work, init=None):
    model = DiT(DIT_CFG, memory=True)
    init_memory(model)
    if init is not None:
        model.load_state_dict(load_file(os.path.join(work, init)))
    return model


def stage_dit(work, seed, steps, batch, stop=None, lr=5e-4, own_from=0.25, roll_from=0.4, rollouts=1, on_levels=0.5,
              name="dit", init=None):
    """Flow matching, two-stream teacher forcing (diffusion forcing: a noise level per
    chunk, `on_levels` of them on the sampler's levels, the rest uniform). The teacher
    is this alone (on_levels 0, own_from = roll_from = 1: never), an ordinary many-step
    flow model. The other additions are for sampling the model itself with the few-step
    AR loop: sprite tokens weigh 5x in the loss (they are 1/16 of the latent pixels and all of the
    content); the first chunk is trained alone as well (first_chunk_loss); from
    `own_from` of the run on, half of the other sequences see as context the model's own
    one-call x0 estimates of the clip (from the sampler's last levels, no gradient); from
    `roll_from` on, `rollouts` sequences per step see as context the runtime's loop run
    by the model itself after the clip's true first chunk (vssm.sample.generate, no
    gradient), and learn to give the clip's true latents after it. A clip that starts later than the video's first frame
    has no loss on its first chunk (it has no context to tell where on its trajectories
    it is). `init` names the EMA weights of an earlier stage to start from (the
    `roll` stage starts from this stage's, model_dit.safetensors)."""
    from vssm.sample import generate

    torch.manual_seed(seed)
    pool = load_file(os.path.join(work, "pool.safetensors"))
    lat, ctx, spr = pool["latents"], pool["context"], pool["sprites"]
    model = generator(work, init)
    if init is not None:
        seed += 2
    ts, _ = sigmas_used()
    levels = torch.tensor(ts) / 1000.0
    g = torch.Generator().manual_seed(seed + 1)
    trainer = Trainer(work, name, model, steps, lr, 100 if init is None else 20, g)
    Fc, L, sink = GEN["num_frame_per_block"], DIT_CFG["local_attn_size"], DIT_CFG["sink_size"]
    C = CLIP_LATENTS // Fc

    def loss_of(step):
        idx = torch.randint(len(lat), (batch,), generator=g)
        z, c = lat[idx], ctx[idx]
        wgt = (1 + 4 * spr[idx])[:, :, None]  # [B, T, 1, h, w]
        wgt[pool["offsets"][idx] > 0, :Fc] = 0
        u = torch.rand(batch, C, generator=g)
        pick = levels[torch.randint(len(levels), (batch, C), generator=g)]
        sig = torch.where(torch.rand(batch, C, generator=g) < on_levels, pick, u).repeat_interleave(Fc, 1)
        eps = torch.randn(z.shape, generator=g)
        s5 = sig[:, :, None, None, None]
        x = (1 - s5) * z + s5 * eps
        # context robustness: the runtime's context frames are the model's own outputs
        zc = z + 0.05 * torch.rand(batch, 1, 1, 1, 1, generator=g) * torch.randn(z.shape, generator=g)
        roll = torch.arange(batch) < (rollouts if step >= roll_from * steps else 0)
        own = ~roll & (torch.rand(batch, generator=g) < (0.5 if step >= own_from * steps else 0.0))
        with torch.no_grad():
            if own.any():
                sl = levels[-1 - torch.randint(2, (int(own.sum()), C), generator=g)].repeat_interleave(Fc, 1)
                sl5 = sl[:, :, None, None, None]
                xs = (1 - sl5) * z[own] + sl5 * torch.randn(z[own].shape, generator=g)
                zc[own] = xs - sl5 * model.forward_train(z[own], xs, sl * 1000.0, c[own], Fc, L, sink)
            if roll.any():
                zc[roll] = generate(model, c[roll], eps[roll], GEN, L, sink, seed=int(torch.randint(2**31, (1,), generator=g)),
                                    prefix=z[roll, :Fc])
        v = model.forward_train(zc, x, sig * 1000.0, c, Fc, L, sink)
        loss = (wgt * (v - (eps - z)).pow(2)).mean() / wgt.mean()
        return loss + first_chunk_loss(model, pool, 4 * batch, g)

    trainer.run(loss_of, stop)


# The teacher's sampler: deterministic Euler steps of the flow ODE, uniform in sigma;
# the trajectories keep the points on every tenth of sigma (the student's possible levels).
ODE_STEPS = 20
ODE_KEEP = [i for i in range(ODE_STEPS) if i % (ODE_STEPS // 10) == 0]


def ode_sigmas():
    return [1.0 - i / ODE_STEPS for i in range(ODE_STEPS)]


@torch.no_grad()
def stage_ode(work, seed, clips, batch=16):
    """The teacher's ODE trajectories (DMD/CausVid's ODE initialisation, scaled down): the
    teacher (model_teacher) samples videos of one training clip's length with the runtime's
    AR loop but ODE_STEPS deterministic steps per chunk; kept are the points at sigma =
    1, 0.9, .., 0.1 and the end point, with the teacher's own outputs as the context. Half
    of the batches start the video from noise; the other half continue the true first
    chunk of a pool clip from later in the minute (given: no loss there), so that the
    student sees every part of the trajectories. One file per batch: a killed run keeps
    what it made and goes on from there."""
    from vssm.sample import generate

    pool = load_file(os.path.join(work, "pool.safetensors"))
    teacher = generator(work, "model_teacher.safetensors").eval()
    sig = ode_sigmas()
    gen = dict(GEN, timesteps_used=[1000.0 * s for s in sig], sigmas_used=sig)
    Fc, L, sink = GEN["num_frame_per_block"], DIT_CFG["local_attn_size"], DIT_CFG["sink_size"]
    os.makedirs(os.path.join(work, "ode"), exist_ok=True)
    t0 = time.time()
    for b in range(clips // batch):
        path = os.path.join(work, "ode", f"part{b:04d}.safetensors")
        if os.path.exists(path):
            continue
        g = torch.Generator().manual_seed(seed * 10**6 + 7 * 10**5 + b)
        later = b % 2 == 1
        rows = (pool["offsets"] > 0) if later else (pool["offsets"] == 0)
        cand = rows.nonzero()[:, 0]
        idx = cand[torch.randint(len(cand), (batch,), generator=g)]
        z, c = pool["latents"][idx], pool["context"][idx]
        rec = {}
        x0 = generate(teacher, c, torch.randn(z.shape, generator=g), gen, L, sink, record=rec, deterministic=True,
                      prefix=z[:, :Fc] if later else None)
        given = 1 if later else 0
        traj = torch.zeros((batch, len(ODE_KEEP)) + z.shape[1:])
        for ch in range(given, z.shape[1] // Fc):
            for k, s in enumerate(ODE_KEEP):
                # the step's input x = x0 + sigma * v
                traj[:, k, ch * Fc:(ch + 1) * Fc] = rec[f"x0.{ch}.{s}"] + sig[s] * rec[f"flow.{ch}.{s}"]
        save_file({"traj": traj.half(), "x0": x0.half(), "context": c.contiguous(),
                   "given": torch.full((batch,), given)}, path)
        log(f"ode {b + 1}/{clips // batch} ({time.time() - t0:.0f}s)")


def load_ode(work):
    parts = sorted(os.listdir(os.path.join(work, "ode")))
    got = [load_file(os.path.join(work, "ode", p)) for p in parts]
    return {k: torch.cat([p[k] for p in got]) for k in got[0]}


def regress(model, context, z, traj, sig, c, given, g, fresh=False):
    """The student's loss: each chunk of a sequence at one of the trajectory points
    `traj` [B, K, T, ...] (at the sigmas `sig` [K]), the clean stream `context` (lightly
    noised: the runtime's context is the model's own output), and the trajectories' end
    points `z` as the target of the x0 estimate. Chunks before `given` [B] have no loss.
    Latent pixels far from the clip's background (the sprites) weigh 5x, as in stage_dit.
    fresh: below sigma = 1 the chunk is its end point noised afresh instead, as the
    runtime's loop makes the inputs of its later levels (its x0 estimate renoised)."""
    Fc, L, sink = GEN["num_frame_per_block"], DIT_CFG["local_attn_size"], DIT_CFG["sink_size"]
    B, T = z.shape[:2]
    k = torch.randint(traj.shape[1], (B, T // Fc), generator=g).repeat_interleave(Fc, 1)
    x = traj[torch.arange(B)[:, None], k, torch.arange(T)[None]]
    s = sig[k]
    if fresh:
        s5 = s[:, :, None, None, None]
        x = torch.where(s5 < 1, (1 - s5) * z + s5 * torch.randn(z.shape, generator=g), x)
    zc = context + 0.05 * torch.rand(B, 1, 1, 1, 1, generator=g) * torch.randn(z.shape, generator=g)
    x0 = x - s[:, :, None, None, None] * model.forward_train(zc, x, s * 1000.0, c, Fc, L, sink)
    bg = z.median(1, keepdim=True).values.median(3, keepdim=True).values.median(4, keepdim=True).values
    wgt = 1 + 4 * ((z - bg).pow(2).mean(2, keepdim=True) > 1.0).float()
    wgt[torch.arange(T)[None] < (given * Fc)[:, None]] = 0
    return (wgt * (x0 - z).pow(2)).mean() / wgt.mean()


def stage_student(work, seed, steps, batch, stop=None, lr=2e-4, fresh=False, name="student", init="model_teacher.safetensors"):
    """The few-step student, from the teacher's weights, regressed on the teacher's ODE
    trajectories (`regress`: a chunk at its point on the trajectory, not a fresh noising
    of the end point, and the end point as the target). The student so learns where a
    noise leads (a sample, one colour chosen), not the mean over all the places it could
    lead (a blur). The optional `fresh` stage continues the student with `regress(...,
    fresh=True)`."""
    ode = load_ode(work)
    torch.manual_seed(seed + 11)
    model = generator(work, init)
    g = torch.Generator().manual_seed(seed + 12)
    trainer = Trainer(work, name, model, steps, lr, 20, g)
    sig = torch.tensor([ode_sigmas()[s] for s in ODE_KEEP])

    def loss_of(step):
        idx = torch.randint(len(ode["x0"]), (batch,), generator=g)
        z = ode["x0"][idx].float()  # the teacher's video: its own context and the targets
        return regress(model, z, z, ode["traj"][idx].float(), sig, ode["context"][idx], ode["given"][idx], g, fresh)

    trainer.run(loss_of, stop)


@torch.no_grad()
def teacher_ode(teacher, context, noise, c, steps):
    """The teacher's ODE for every chunk of a sequence at once, given its clean context
    (forward_train: each chunk sees the context before it, as in the AR loop), from
    `noise`, in `steps` uniform Euler steps: the points at each step's sigma [B, steps,
    T, ...] and the end point."""
    Fc, L, sink = GEN["num_frame_per_block"], DIT_CFG["local_attn_size"], DIT_CFG["sink_size"]
    x, pts = noise, []
    B, T = noise.shape[:2]
    for i in range(steps):
        s = 1.0 - i / steps
        pts.append(x)
        x = x - (1.0 / steps) * teacher.forward_train(context, x, torch.full((B, T), 1000.0 * s), c, Fc, L, sink)
    return torch.stack(pts, 1), x


def stage_selfroll(work, seed, steps, batch, stop=None, lr=1e-4, rollouts=8, reuse=4, ode_steps=10):
    """Stage 2, on the student's own rollouts: every `reuse` steps the student runs the
    runtime's loop (rolling window, memory filled from its own outputs) for `rollouts`
    clips (half from the video's start, half after a pool clip's true first chunk from
    later in the minute), and the teacher runs its ODE from the same noise for every chunk
    given the student's rollout as the context; the student then regresses on those
    trajectories with its rollout as the context (`regress`). Self-Forcing trains on its
    own rollouts with DMD; this keeps the teacher's ODE as the target instead (no critic
    to train on this budget): from wherever the student's own video has drifted, the
    target is what the teacher would make of it."""
    from vssm.sample import generate

    pool = load_file(os.path.join(work, "pool.safetensors"))
    torch.manual_seed(seed + 21)
    model = generator(work, "model_student.safetensors")
    teacher = generator(work, "model_teacher.safetensors").eval()
    g = torch.Generator().manual_seed(seed + 22)
    trainer = Trainer(work, "selfroll", model, steps, lr, 20, g)
    Fc, L, sink = GEN["num_frame_per_block"], DIT_CFG["local_attn_size"], DIT_CFG["sink_size"]
    sig = torch.tensor([1.0 - i / ode_steps for i in range(ode_steps)])
    buf = {}

    def loss_of(step):
        if step % reuse == 0 or not buf:
            later = torch.arange(rollouts) >= rollouts // 2
            idx = torch.where(later, (pool["offsets"] > 0).nonzero()[:, 0][torch.randint(int((pool["offsets"] > 0).sum()), (rollouts,), generator=g)],
                              (pool["offsets"] == 0).nonzero()[:, 0][torch.randint(int((pool["offsets"] == 0).sum()), (rollouts,), generator=g)])
            z, c = pool["latents"][idx], pool["context"][idx]
            noise = torch.randn(z.shape, generator=g)
            seed_r = int(torch.randint(2**31, (1,), generator=g))
            with torch.no_grad():
                own = torch.cat([generate(model, c[~later], noise[~later], GEN, L, sink, seed=seed_r),
                                 generate(model, c[later], noise[later], GEN, L, sink, seed=seed_r, prefix=z[later, :Fc])])
            c = torch.cat([c[~later], c[later]])
            given = torch.cat([torch.zeros(int((~later).sum()), dtype=torch.long), torch.ones(int(later.sum()), dtype=torch.long)])
            noise = torch.cat([noise[~later], noise[later]])
            pts, end = teacher_ode(teacher, own, noise, c, ode_steps)
            # the rollout's own chunks are the context; each chunk's target is the
            # teacher's end point from that context (the given chunk stays the true one)
            buf.update(own=own, pts=pts, end=end, c=c, given=given)
        pick = torch.randint(rollouts, (batch,), generator=g)
        return regress(model, buf["own"][pick], buf["end"][pick], buf["pts"][pick], sig, buf["c"][pick], buf["given"][pick], g)

    trainer.run(loss_of, stop)


def first_chunk_loss(model, pool, n, g):
    """The video's first chunk alone, half of the time at sigma = 1 (where the loop
    starts), a quarter at 0.8 and a quarter uniform in [0.5, 1]: there only the prompt
    tells the model what to draw, and in whole sequences it is 1 chunk in 8 of a quarter
    of the clips."""
    Fc, L, sink = GEN["num_frame_per_block"], DIT_CFG["local_attn_size"], DIT_CFG["sink_size"]
    lat, ctx, spr = pool["latents"], pool["context"], pool["sprites"]
    starts = (pool["offsets"] == 0).nonzero()[:, 0]
    idx = starts[torch.randint(len(starts), (n,), generator=g)]
    z, c, wgt = lat[idx, :Fc], ctx[idx], (1 + 4 * spr[idx, :Fc])[:, :, None]
    r = torch.rand(n, generator=g)
    sig = torch.where(r < 0.5, 1.0, torch.where(r < 0.75, 0.8, 0.5 + 0.5 * torch.rand(n, generator=g)))
    s5 = sig[:, None, None, None, None]
    eps = torch.randn(z.shape, generator=g)
    x = (1 - s5) * z + s5 * eps
    v = model.forward_train(z, x, sig[:, None].expand(n, Fc) * 1000.0, c, Fc, L, sink)
    return (wgt * (v - (eps - z)).pow(2)).mean() / wgt.mean()


def sigmas_used():
    from vssm.sample import sigmas_from

    return sigmas_from(GEN)


# ---- export -----------------------------------------------------------------------------
def stage_export(work, out, model):
    os.makedirs(out, exist_ok=True)
    ts, sig = sigmas_used()
    gen = dict(GEN, timesteps_used=ts, sigmas_used=sig)
    json.dump(DIT_CFG, open(os.path.join(out, "config.json"), "w"), indent=1)
    json.dump(gen, open(os.path.join(out, "generation.json"), "w"), indent=1)
    json.dump(T5_CFG, open(os.path.join(out, "t5_config.json"), "w"), indent=1)
    vcfg = json.load(open(os.path.join(work, "vae_config.json")))
    json.dump(vcfg, open(os.path.join(out, "vae_config.json"), "w"), indent=1)
    save_file(load_file(os.path.join(work, f"model_{model}.safetensors")), os.path.join(out, "model.safetensors"))
    for name in ["t5.safetensors", "vae.safetensors"]:
        save_file(load_file(os.path.join(work, name)), os.path.join(out, name))
    with open(os.path.join(work, "tokenizer.json")) as f, open(os.path.join(out, "tokenizer.json"), "w") as g:
        g.write(f.read())
    total = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    log(f"exported to {out}: {total / 1e6:.2f} MB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="weights/tiny")
    ap.add_argument("--work", default="weights/train/run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stages", default="text,vae,pool,decoder,teacher,ode,student,fresh,export")
    ap.add_argument("--vae-steps", type=int, default=1200)
    ap.add_argument("--pool-clips", type=int, default=1200)
    ap.add_argument("--dit-steps", type=int, default=2000)
    ap.add_argument("--rollouts", type=int, default=1, help="sequences per generator step trained after the loop's own rollout")
    ap.add_argument("--decoder-steps", type=int, default=1500)
    ap.add_argument("--decoder-stop", type=int, help="end the decoder run after this many steps of its schedule")
    ap.add_argument("--dit-stop", type=int, help="end the generator run after this many steps of its schedule")
    ap.add_argument("--roll-steps", type=int, default=1000)
    ap.add_argument("--roll-stop", type=int, help="end the rollout stage after this many steps of its schedule")
    ap.add_argument("--teacher-steps", type=int, default=2400)
    ap.add_argument("--teacher-stop", type=int, help="end the teacher run after this many steps of its schedule")
    ap.add_argument("--ode-clips", type=int, default=640, help="teacher ODE trajectories (clips of 8 chunks)")
    ap.add_argument("--student-steps", type=int, default=1000)
    ap.add_argument("--student-stop", type=int, help="end the student run after this many steps of its schedule")
    ap.add_argument("--selfroll-steps", type=int, default=500)
    ap.add_argument("--selfroll-stop", type=int, help="end the self-rollout run after this many steps of its schedule")
    ap.add_argument("--export-from", default="fresh", help="the generator stage whose EMA weights are exported")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    stages = a.stages.split(",")
    t0 = time.time()
    if "text" in stages:
        stage_text(a.work, a.seed)
    if "vae" in stages:
        stage_vae(a.work, a.seed, a.vae_steps)
    if "pool" in stages:
        stage_pool(a.work, a.seed, a.pool_clips)
    if "dit" in stages:
        stage_dit(a.work, a.seed, a.dit_steps, a.batch, a.dit_stop, rollouts=a.rollouts)
    if "roll" in stages:
        # all but one sequence of each batch after the loop's own rollout; the last one
        # keeps the true context, so continuation from true frames is not forgotten
        stage_dit(a.work, a.seed, a.roll_steps, a.batch, a.roll_stop, lr=2e-4, own_from=1.0, roll_from=0.0,
                  rollouts=a.batch - 1, name="roll", init="model_dit.safetensors")
    if "teacher" in stages:
        stage_dit(a.work, a.seed, a.teacher_steps, a.batch, a.teacher_stop, own_from=1.0, roll_from=1.0, on_levels=0.0,
                  name="teacher")
    if "ode" in stages:
        stage_ode(a.work, a.seed, a.ode_clips)
    if "student" in stages:
        stage_student(a.work, a.seed, a.student_steps, a.batch, a.student_stop)
    if "fresh" in stages:
        stage_student(a.work, a.seed, 400, a.batch, lr=1e-4, fresh=True, name="fresh", init="model_student.safetensors")
    if "selfroll" in stages:
        stage_selfroll(a.work, a.seed, a.selfroll_steps, a.batch, a.selfroll_stop)
    if "decoder" in stages:
        stage_decoder(a.work, a.seed, a.decoder_steps, a.decoder_stop)
    if "export" in stages:
        stage_export(a.work, a.out, a.export_from)
    log(f"total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
