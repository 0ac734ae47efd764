"""A seeded procedural world: 1-3 sprites bouncing off the walls of a plain background.
The sprites start at fixed slots (by their number and prompt order) and move off at one
speed in a random heading; `couple_noise` writes the headings into the generator's
first-chunk noise, so that the noise, not a hidden seed, decides the motion.

`clip(seed, frames)` returns uint8 frames [T, H, W, 3] at 16 fps, the prompt naming what
is in them, and the ground truth (per frame: centre, visibility of each object). The
long-horizon event: with probability `hide_prob` one object vanishes for 3 s (longer
than the generator's window) while it keeps moving, then comes back with its colour,
shape and trajectory — only a memory of the evicted frames can get that right.
"""
import numpy as np

SIZE = 64
COLOURS = {
    "red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 240), "yellow": (240, 220, 40),
    "cyan": (40, 220, 230), "magenta": (220, 50, 220), "orange": (250, 140, 20), "white": (245, 245, 245),
}
BACKGROUNDS = {"black": (0, 0, 0), "gray": (128, 128, 128), "white": (245, 245, 245)}
SHAPES = ["circle", "square", "triangle"]
WORDS = list(COLOURS) + list(BACKGROUNDS) + SHAPES + ["a", "and", "bouncing", "on", ","]


def prompt_of(objs, bg):
    names = [f"a {o['colour']} {o['shape']}" for o in objs]
    head = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{head} bouncing on {bg}"


# Where the sprites of an n-sprite scene start, in prompt order: the first frame follows
# from the prompt, so the generator's first chunk has one answer to commit to (from pure
# noise, a position drawn anywhere averages out to the background); the motion is random.
SLOTS = {1: [(32, 32)], 2: [(20, 32), (44, 32)], 3: [(19, 21), (45, 21), (32, 44)]}
# One size, one speed and one hiding time: given the prompt and the headings a clip has
# one answer, so the generator can commit to it instead of averaging over choices it
# cannot see.
RADIUS, SPEED, HIDE = 9.0, 1.0, 48


def sample_scene(rng):
    bg = rng.choice(list(BACKGROUNDS))
    n = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
    palette = [c for c in COLOURS if c != bg]
    cols = rng.choice(palette, size=n, replace=False)
    objs = []
    for c, pos in zip(cols, SLOTS[n]):
        ang = rng.uniform(0, 2 * np.pi)
        objs.append({"colour": str(c), "shape": str(rng.choice(SHAPES)), "r": RADIUS, "heading": ang,
                     "pos": np.array(pos, float), "vel": SPEED * np.array([np.cos(ang), np.sin(ang)])})
    return objs, str(bg)


def simulate(objs, frames):
    """Centres [T, n, 2] (x, y) with elastic bounces off the walls."""
    out = np.zeros((frames, len(objs), 2))
    for i, o in enumerate(objs):
        p, v, r = o["pos"].copy(), o["vel"].copy(), o["r"]
        for t in range(frames):
            out[t, i] = p
            p = p + v
            for a in range(2):
                if p[a] < r:
                    p[a], v[a] = 2 * r - p[a], -v[a]
                elif p[a] > SIZE - r:
                    p[a], v[a] = 2 * (SIZE - r) - p[a], -v[a]
    return out


_YY, _XX = np.mgrid[0:SIZE, 0:SIZE] + 0.5


def coverage(shape, cx, cy, r):
    """Soft (1-pixel anti-aliased) mask of one sprite."""
    dx, dy = _XX - cx, _YY - cy
    if shape == "circle":
        d = np.sqrt(dx**2 + dy**2) - r
    elif shape == "square":
        d = np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * r
    else:  # upward triangle inscribed in the circle of radius r
        k = np.sqrt(3) / 2
        d = np.maximum.reduce([dy - 0.5 * r, -k * dx - 0.5 * dy - 0.5 * r, k * dx - 0.5 * dy - 0.5 * r])
    return np.clip(0.5 - d, 0.0, 1.0)


def render(objs, bg, centres, visible):
    T = centres.shape[0]
    img = np.empty((T, SIZE, SIZE, 3), np.float32)
    img[:] = np.array(BACKGROUNDS[bg], np.float32)
    for t in range(T):
        for i, o in enumerate(objs):
            if not visible[t, i]:
                continue
            m = coverage(o["shape"], centres[t, i, 0], centres[t, i, 1], o["r"])[..., None]
            img[t] = img[t] * (1 - m) + m * np.array(COLOURS[o["colour"]], np.float32)
    return np.round(img).astype(np.uint8)


def clip(seed, frames, hide_prob=0.15, skip=0):
    """skip: drop that many frames from the start (the autoencoder's short clips then show
    sprites anywhere, not only at their start slots)."""
    rng = np.random.default_rng(seed)
    objs, bg = sample_scene(rng)
    centres = simulate(objs, skip + frames)[skip:]
    visible = np.ones((frames, len(objs)), bool)
    if frames > 40 and rng.random() < hide_prob:
        i = rng.integers(len(objs))
        dur = HIDE
        start = int(rng.integers(8, max(9, frames - dur - 8)))
        visible[start:start + dur, i] = False
    return render(objs, bg, centres, visible), prompt_of(objs, bg), {"objs": objs, "bg": bg, "centres": centres, "visible": visible}


LATENT = 8  # pixels per latent pixel (the autoencoder's stride); a token is 2x2 latent pixels


def heading_pair(eps, i, n, where="mean"):
    """The two noise views whose means carry sprite i's heading (of n): channels 2i and
    2i+1 over the whole first chunk (where="mean"), or over the token of frame 0 under
    the sprite's start slot (where="slot": a local signal of about 2.5 standard
    deviations for that token, where the chunk-wide mean is about 0.07)."""
    if where == "mean":
        return eps[:, 2 * i], eps[:, 2 * i + 1]
    x, y = SLOTS[n][i]
    tx, ty = int(x) // (2 * LATENT), int(y) // (2 * LATENT)
    rows, cols = slice(2 * ty, 2 * ty + 2), slice(2 * tx, 2 * tx + 2)
    return eps[0, 2 * i, rows, cols], eps[0, 2 * i + 1, rows, cols]


def couple_noise(eps, headings, where="mean"):
    """eps: i.i.d. normal noise of a first chunk [F, C, h, w]; headings: the n sprites'
    angles. Rotates the pair of means of sprite i's `heading_pair` to its heading,
    keeping its length. The pair's angle is uniform and independent of its length and of
    the rest of the noise, so for uniform headings the result is still i.i.d. normal:
    the runtime's own noise is a draw of this, and the generator reads each heading off
    it."""
    out = eps.clone()
    for i, ang in enumerate(headings):
        a, b = heading_pair(out, i, len(headings), where)
        ma, mb = a.mean(), b.mean()
        r = (ma * ma + mb * mb).sqrt()
        a += r * np.cos(ang) - ma
        b += r * np.sin(ang) - mb
    return out


def heading_of(eps, i, n, where="mean"):
    """The heading that first-chunk noise eps carries for sprite i of n."""
    a, b = heading_pair(eps, i, n, where)
    return float(np.arctan2(float(b.mean()), float(a.mean())))


def to_tensor(frames):
    """uint8 [T, H, W, 3] -> float [3, T, H, W] in [-1, 1]."""
    import torch

    return torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0
