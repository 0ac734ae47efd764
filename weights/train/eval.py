"""Finds the prompted objects in generated frames and checks that their motion is continuous.

    python weights/train/eval.py --weights weights/tiny --seconds 60 [--png-dir DIR]
    python weights/train/eval.py --frames video.npy --prompt "..."   # frames from elsewhere
    python weights/train/eval.py --ground-truth                      # the detector and kept on the world and its control
    python weights/train/eval.py --reconstruct                       # ... on the autoencoder's reconstructions
    python weights/train/eval.py --continue 3                        # rollouts continuing 3 true chunks
    python weights/train/eval.py --teacher-forced                    # sprite error of one model call per chunk
    python weights/train/eval.py --path                              # does the sprite follow the world's trajectory?
    python weights/train/eval.py --steps 1000,950,..,50 --deterministic  # another sampler (the teacher's ODE)

Per frame, each prompted object (a shape; its colour is the world's random choice, so
every colour the prompt leaves open is tried) counts as found when the pixels of one
colour form a blob (>= 20 px) whose best-matching sprite template (circle/square/triangle,
radius 5-10) is the prompted shape (IoU >= 0.3) in most frames within +-4 frames; the
object's colour in that frame is the blob's. Motion: a jump of the blob's centre
above 6 px between frames is a teleport (sprites move <= 2 px/frame), an object that
moves < 2 px over 16 frames (1 s) is frozen (sprites never stop). A frame is coherent
when every object is found, none teleported into it and none is frozen. Memory: `kept`
is the share of returns (an object found again after more than 36 frames, the 9-latent
window, without it) whose colour is that of its first appearance; the world's sprites
leave the view for 55+ frames, so the window alone cannot know it (chance is 1/7).
`--ground-truth` scores the world and its control (a colour redrawn at each return).
Rollouts compare: memory on, memory off (window only), shorter window (memory on).

Two measures separate the failure modes of a rollout (both read the training encoder from
--work): --reconstruct scores world clips passed through the autoencoder, the best any
generator can reach through this decoder; --continue K starts rollouts of world clips from
their first K chunks encoded (the generator's continuation alone, without having to draw
the first chunk from noise) and scores the frames after them. --teacher-forced is the
latent-space view of the same (it reads the pool of --work): every chunk of held-out pool
clips noised to sigma and estimated in one model call from the true context, the error on
sprite latent pixels per chunk against their variance and against copying the last
context frame. --path rolls out the one-sprite default prompt from several seeds and
measures how far the found sprite's centre is from the world's trajectory for that
prompt (the prompt fixes it), per 10 s.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vssm import world  # noqa: E402
from vssm.dit import DiT  # noqa: E402
from vssm.sample import generate  # noqa: E402
from vssm.t5 import T5Encoder, encode_prompt  # noqa: E402
from vssm.vae import WanVAE  # noqa: E402

PROMPTS = [
    "a circle bouncing on black",  # the README's default prompt
    "a circle and a square bouncing on black",
    "a triangle bouncing on gray",
    "a square, a circle and a triangle bouncing on white",
    "a circle and a triangle bouncing on black",
]
GAP = 36  # video frames of absence before a return counts for `kept`: the 9-frame window


def parse_prompt(prompt):
    """[(colour or None, shape)] in prompt order, and the background. The world's prompts
    leave colours unnamed; a named one (the earlier world's prompts) is looked for alone."""
    w = prompt.replace(",", " ").split()
    objs = [(w[i - 1] if i > 0 and w[i - 1] in world.COLOURS else None, w[i]) for i in range(len(w)) if w[i] in world.SHAPES]
    bg = w[-1] if w[-1] in world.BACKGROUNDS else None
    return objs, bg


def best_shape(mask, cy, cx):
    best = (0.0, None)
    for shape in world.SHAPES:
        for r in (5.0, 6.0, 7.0, 8.0, 9.0, 10.0):
            t = world.coverage(shape, cx + 0.5, cy + 0.5, r) > 0.5
            inter = np.logical_and(t, mask).sum()
            iou = inter / max(1, np.logical_or(t, mask).sum())
            if iou > best[0]:
                best = (iou, shape)
    return best


def blobs(frame, colours, colour_tol=80.0):
    """{colour: (pixels, (cx, cy), best shape, IoU)} for each colour with >= 20 px."""
    out = {}
    f = frame.astype(np.float32)
    for c in colours:
        m = np.linalg.norm(f - np.array(world.COLOURS[c], np.float32), axis=-1) < colour_tol
        if m.sum() >= 20:
            ys, xs = np.nonzero(m)
            iou, s = best_shape(m, ys.mean(), xs.mean())
            out[c] = (int(m.sum()), (xs.mean(), ys.mean()), s, iou)
    return out


def detect(frames, prompt, half=4):
    """frames uint8 [T, H, W, 3] -> found [T, n] bool, centres [T, n, 2] (nan when
    absent), colours [T][n] (None when absent). An object is looked for in every colour
    the prompt leaves open (the palette less the background and the colours named for
    other objects) whose blobs fit its shape most often; per colour, it is present where that colour forms a blob, and its
    shape counts where the blob's best template is the object's shape (IoU >= 0.3) in
    most frames within +-`half` (a sprite partly behind another keeps its identity). Of
    the colours that pass, the largest blob is the object's in that frame."""
    objs, bg = parse_prompt(prompt)
    named = {c for c, _ in objs if c}
    open_colours = [c for c in world.COLOURS if c != bg and c not in named]
    seen = [blobs(f, [c for c in world.COLOURS if c in named or c in open_colours]) for f in frames]
    # An open colour belongs to the shape its blobs fit most often over the video: in a
    # frame where a sprite is half out of view or behind another, its blob can fit
    # another shape, and must not then stand for another object.
    fits = {c: [sum(1 for b in seen if c in b and b[c][2] == sh and b[c][3] >= 0.3) for sh in world.SHAPES] for c in open_colours}
    owner = {c: world.SHAPES[int(np.argmax(k))] for c, k in fits.items() if max(k) > 0}
    cands = [[c] if c else [d for d in open_colours if owner.get(d) == shape] for c, shape in objs]
    T, n = len(frames), len(objs)
    found = np.zeros((T, n), bool)
    centres = np.full((T, n, 2), np.nan)
    colours = [[None] * n for _ in range(T)]
    for i, (_, shape) in enumerate(objs):
        for c in cands[i]:
            present = np.array([c in b for b in seen])
            ok = np.array([c in b and b[c][2] == shape and b[c][3] >= 0.3 for b in seen])
            for t in np.nonzero(present)[0]:
                sl = slice(max(0, t - half), t + half + 1)
                if ok[sl].sum() < 0.5 * present[sl].sum():
                    continue
                if colours[t][i] is None or seen[t][c][0] > seen[t][colours[t][i]][0]:
                    found[t, i], centres[t, i], colours[t][i] = True, seen[t][c][1], c
    return found, centres, colours


def returns(found, colours, gap=GAP, k=8):
    """(returns, kept): per object, a return is a found frame after more than `gap`
    frames without it (and after its first appearance); kept when the commonest colour of
    its first `k` found frames from there is that of the object's first `k` found frames."""
    n_ret = n_kept = 0
    for i in range(found.shape[1]):
        ts = np.nonzero(found[:, i])[0]
        if len(ts) == 0:
            continue

        def colour_from(j):
            names = [colours[t][i] for t in ts[j:j + k]]
            return max(set(names), key=names.count)

        first = colour_from(0)
        for j in np.nonzero(np.diff(ts) > gap)[0] + 1:
            n_ret += 1
            n_kept += colour_from(j) == first
    return n_ret, n_kept


def motion(centres, found, jump=6.0, still=2.0, span=16):
    T, n = found.shape
    teleport = np.zeros((T, n), bool)
    frozen = np.zeros((T, n), bool)
    for i in range(n):
        for t in range(1, T):
            if found[t, i] and found[t - 1, i]:
                teleport[t, i] = np.linalg.norm(centres[t, i] - centres[t - 1, i]) > jump
        for t in range(span, T):
            seg = centres[t - span:t + 1, i]
            if found[t - span:t + 1, i].all():
                path = np.linalg.norm(np.diff(seg, axis=0), axis=1).sum()
                frozen[t - span:t + 1, i] |= path < still
    return teleport, frozen


def score(frames, prompt):
    found, centres, colours = detect(frames, prompt)
    tele, froz = motion(centres, found)
    coherent = found.all(1) & ~tele.any(1) & ~froz.any(1)
    n_ret, n_kept = returns(found, colours)
    return {"found": float(found.mean()), "all_found": float(found.all(1).mean()),
            "teleports": int(tele.sum()), "frozen": float(froz.any(1).mean()), "coherent": float(coherent.mean()),
            "returns": n_ret, "kept_returns": n_kept, "kept": n_kept / n_ret if n_ret else float("nan")}


class Model:
    def __init__(self, wdir):
        from tokenizers import Tokenizer

        self.cfg = json.load(open(f"{wdir}/config.json"))
        self.gen = json.load(open(f"{wdir}/generation.json"))
        self.tok = Tokenizer.from_file(f"{wdir}/tokenizer.json")
        self.t5 = T5Encoder(json.load(open(f"{wdir}/t5_config.json")))
        self.t5.load_state_dict(load_file(f"{wdir}/t5.safetensors"))
        self.vae = WanVAE(json.load(open(f"{wdir}/vae_config.json")))
        self.vae.load_state_dict(load_file(f"{wdir}/vae.safetensors"), strict=False)  # decoder only
        self.dit = DiT(self.cfg)
        self.dit.load_state_dict(load_file(f"{wdir}/model.safetensors"))

    def noise(self, latent_frames, seed):
        """The rollout noise of `seed` (what `video` draws)."""
        g = torch.Generator().manual_seed(seed)
        h, w = self.gen["latent_height"], self.gen["latent_width"]
        return torch.randn(latent_frames, self.cfg["in_dim"], h, w, generator=g)

    def sampler(self, steps=None, deterministic=False):
        """Another step list (timesteps, 1000 = pure noise) and/or the deterministic update
        (the model's own noise estimate instead of a fresh draw) than generation.json's."""
        if steps is not None:
            self.gen = {k: v for k, v in self.gen.items() if k not in ("timesteps_used", "sigmas_used")}
            self.gen["denoising_step_list"] = steps
        self.deterministic = deterministic

    @torch.no_grad()
    def videos(self, prompts, latent_frames, seeds, L=None, memory=True, prefix=None):
        """One rollout per prompt, all in one batch (the noise of each from its seed)."""
        ctx = torch.stack([self.t5(*(x[None] for x in encode_prompt(self.tok, p, self.cfg["text_len"])))[0] for p in prompts])
        noise = torch.stack([self.noise(latent_frames, s) for s in seeds])
        L = self.cfg["local_attn_size"] if L is None else L
        lat = generate(self.dit, ctx, noise, self.gen, L, self.cfg["sink_size"], memory=memory, seed=seeds[0],
                       prefix=prefix, deterministic=getattr(self, "deterministic", False))
        return [to_uint8(self.vae.decode(z.transpose(0, 1)[None])[0]) for z in lat]

    def video(self, prompt, latent_frames, seed, L=None, memory=True, prefix=None):
        return self.videos([prompt], latent_frames, [seed], L, memory, None if prefix is None else prefix[None])[0]


def latent_frames(seconds, Fc):
    """Whole chunks of latent frames (4 video frames each) for a video of `seconds`."""
    return int(16 * seconds) // 4 // Fc * Fc


def to_uint8(v):
    """video [3, T, H, W] in [-1, 1] -> uint8 [T, H, W, 3]."""
    return np.round((v.permute(1, 2, 3, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)


def truth_clips(seconds, n, recolour=False):
    """The world clips the measures share (seeded); recolour: the control world."""
    return [world.clip(10**8 + s, 1 + 4 * (int(16 * seconds) // 4), recolour=recolour)[:2] for s in range(n)]


def mean_scores(rows):
    """Shares averaged over the videos; counts summed; kept over all returns."""
    out = {k: float(np.mean([r[k] for r in rows])) for k in ("found", "all_found", "frozen", "coherent")}
    out.update({k: int(sum(r[k] for r in rows)) for k in ("teleports", "returns", "kept_returns")})
    out["kept"] = out["kept_returns"] / out["returns"] if out["returns"] else float("nan")
    return out


@torch.no_grad()
def reconstructions(work, seconds, n):
    import train

    vae = train.load_vae(work)
    rows = []
    for f, p in truth_clips(seconds, n):
        rows.append(score(to_uint8(vae.decode_raw(vae.encode_raw(world.to_tensor(f)[None])[0])[0]), p))
        print("reconstruct", p, rows[-1], flush=True)
    return mean_scores(rows)


@torch.no_grad()
def continuations(m, work, seconds, n, chunks):
    import train

    vae = train.load_vae(work)
    Fc = m.gen["num_frame_per_block"]
    lf = latent_frames(seconds, Fc)
    skip = 1 + 4 * (chunks * Fc - 1)  # video frames of the given chunks
    rows = []
    for i, (f, p) in enumerate(truth_clips(seconds, n)):
        z = vae.normalise(vae.encode_raw(world.to_tensor(f[:skip])[None])[0])[0].transpose(0, 1)
        rows.append(score(m.video(p, lf, seed=i, prefix=z)[skip:], p))
        print(f"continue {chunks}", p, rows[-1], flush=True)
    return mean_scores(rows)


def strip(frames, every, path):
    from PIL import Image

    sel = frames[::every][:16]
    Image.fromarray(np.concatenate(list(sel), 1)).resize((sel.shape[0] * 128, 128), Image.NEAREST).save(path)


@torch.no_grad()
def teacher_forced(m, work, sigmas=(1.0, 0.8, 0.6), clips=16):
    pool = load_file(os.path.join(work, "pool.safetensors"))
    idx = torch.arange(len(pool["latents"]) - clips, len(pool["latents"]))
    z, c, spr = (pool[k][idx] for k in ("latents", "context", "sprites"))
    Fc, L, sink = m.gen["num_frame_per_block"], m.cfg["local_attn_size"], m.cfg["sink_size"]
    spr = spr > 0
    spr[pool["offsets"][idx] > 0, :Fc] = False  # a later start's first chunk has no answer
    g = torch.Generator().manual_seed(5)

    def per_chunk(err, mask):
        return [round(float(err[:, k:k + Fc][mask[:, k:k + Fc]].mean()), 2) for k in range(0, err.shape[1], Fc)]

    out = {"variance": round(float(z.pow(2).mean(2)[spr].mean()), 2)}
    last = z[:, Fc - 1:-1:Fc].repeat_interleave(Fc, 1)  # every chunk after the first from the frame before it
    out["copy"] = [None] + per_chunk(((last - z[:, Fc:]) ** 2).mean(2), spr[:, Fc:])
    for s in sigmas:
        x = (1 - s) * z + s * torch.randn(z.shape, generator=g)
        x0 = x - s * m.dit.forward_train(z, x, torch.full(z.shape[:2], s * 1000.0), c, Fc, L, sink)
        out[f"sigma {s}"] = per_chunk(((x0 - z) ** 2).mean(2), spr)
    return out


@torch.no_grad()
def path_error(m, seeds, seconds):
    """Centre error (px, where found) against the world's trajectory, per 10 s."""
    prompt = PROMPTS[0]
    lf = latent_frames(seconds, m.gen["num_frame_per_block"])
    rows = []
    for seed in range(seeds):
        f = m.video(prompt, lf, seed=seed)
        found, centres, _ = detect(f, prompt)
        truth = world.simulate(world.objects(parse_prompt(prompt)[0]), len(f))[:, 0]
        d = np.where(found[:, 0], np.linalg.norm(centres[:, 0] - truth, axis=1), np.nan)
        rows.append([float(np.nanmean(d[k:k + 160])) if found[k:k + 160, 0].any() else float("nan") for k in range(0, len(f), 160)])
        print("path seed", seed, "centre error px per 10 s", np.round(rows[-1], 1), "found", round(float(found[:, 0].mean()), 3), flush=True)
    return {"centre error px per 10 s (where found)": np.round(np.nanmean(rows, 0), 1).tolist()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights/tiny")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--prompts", type=int, default=len(PROMPTS))
    ap.add_argument("--short-window", type=int, default=6)
    ap.add_argument("--png-dir")
    ap.add_argument("--frames", help=".npy uint8 [T, H, W, 3] to score instead of a rollout")
    ap.add_argument("--prompt")
    ap.add_argument("--ground-truth", action="store_true")
    ap.add_argument("--reconstruct", action="store_true", help="score the autoencoder's reconstructions")
    ap.add_argument("--continue", dest="cont", type=int, metavar="K", help="rollouts continuing K true chunks")
    ap.add_argument("--teacher-forced", action="store_true", help="sprite latent error per chunk, true context")
    ap.add_argument("--path", action="store_true", help="centre error against the world's trajectory")
    ap.add_argument("--seeds", type=int, default=4, help="rollouts of --path")
    ap.add_argument("--clips", type=int, default=8, help="world clips of --ground-truth, --reconstruct, --continue")
    ap.add_argument("--work", default="weights/train/run", help="train.py's work folder (the encoder)")
    ap.add_argument("--modes", default="on,off,short", help="memory on, memory off, shorter window")
    ap.add_argument("--steps", help="comma-separated step list (timesteps) instead of generation.json's")
    ap.add_argument("--deterministic", action="store_true", help="the ODE's Euler update instead of fresh noise")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.frames:
        print(json.dumps(score(np.load(a.frames), a.prompt)))
        return
    results = {}
    if a.ground_truth:
        results["world"] = mean_scores([score(f, p) for f, p in truth_clips(a.seconds, a.clips)])
        results["control: colour redrawn at each return"] = mean_scores(
            [score(f, p) for f, p in truth_clips(a.seconds, a.clips, recolour=True)])
    elif a.reconstruct:
        results["reconstruct"] = reconstructions(a.work, a.seconds, a.clips)
    elif a.teacher_forced:
        results["teacher-forced sprite MSE per chunk"] = teacher_forced(Model(a.weights), a.work)
    elif a.path:
        results["path"] = path_error(Model(a.weights), a.seeds, a.seconds)
    elif a.cont:
        results[f"continue {a.cont}"] = continuations(Model(a.weights), a.work, a.seconds, a.clips, a.cont)
    else:
        m = Model(a.weights)
        m.sampler([int(t) for t in a.steps.split(",")] if a.steps else None, a.deterministic)
        lf = latent_frames(a.seconds, m.gen["num_frame_per_block"])
        cfgL = m.cfg["local_attn_size"]
        modes = {"on": ("memory on", dict(memory=True)), "off": ("memory off", dict(memory=False)),
                 "short": (f"window {a.short_window}", dict(memory=True, L=a.short_window))}
        for name, kw in (modes[k] for k in a.modes.split(",")):
            rows = []
            prompts = PROMPTS[: a.prompts]
            for i, (p, f) in enumerate(zip(prompts, m.videos(prompts, lf, list(range(len(prompts))), **kw))):
                rows.append(score(f, p))
                if a.png_dir:
                    os.makedirs(a.png_dir, exist_ok=True)
                    tag = name.replace(" ", "_")
                    strip(f, max(1, len(f) // 16), f"{a.png_dir}/{tag}_{i}.png")
                    strip(f[:48], 3, f"{a.png_dir}/{tag}_{i}_start.png")
                print(name, p, rows[-1], flush=True)
            results[name] = mean_scores(rows)
        results["window"] = cfgL
    print(json.dumps(results, indent=1))
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
