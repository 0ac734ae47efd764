"""A seeded procedural world: 1-3 sprites bouncing off the walls of a plain background.
The sprites start at fixed slots and move off in fixed headings (both by their number
and prompt order), at one speed: the prompt decides the whole motion, so the generator
has one answer to give for every chunk, the first one included.

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


# Where the sprites of an n-sprite scene start and where they head (radians, y down), in
# prompt order. A choice the prompt does not name is one the generator cannot see: its
# estimate is then the average over the choices, a sprite smeared out (from pure noise,
# the background), which the few-step loop blurs further chunk by chunk. So the prompt
# fixes the trajectory; the headings are off the axes and unequal, so that over a minute
# each sprite sweeps the frame instead of retracing one line.
SLOTS = {1: [(32, 32)], 2: [(20, 32), (44, 32)], 3: [(19, 21), (45, 21), (32, 44)]}
HEADINGS = {1: [0.6435], 2: [-0.6435, 2.2143], 3: [0.4636, 2.0344, -1.249]}
# One size, one speed and one hiding time, for the same reason.
RADIUS, SPEED, HIDE = 9.0, 1.0, 48


def objects(named):
    """The sprites of a scene from its (colour, shape) pairs in prompt order."""
    n = len(named)
    return [{"colour": c, "shape": sh, "r": RADIUS, "pos": np.array(pos, float),
             "vel": SPEED * np.array([np.cos(ang), np.sin(ang)])}
            for (c, sh), pos, ang in zip(named, SLOTS[n], HEADINGS[n])]


def sample_scene(rng):
    bg = rng.choice(list(BACKGROUNDS))
    n = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
    palette = [c for c in COLOURS if c != bg]
    cols = rng.choice(palette, size=n, replace=False)
    return objects([(str(c), str(rng.choice(SHAPES))) for c in cols]), str(bg)


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
    """skip: start that many frames into the scene (the autoencoder's short clips then
    show sprites anywhere, the generator's clips any part of a minute's trajectories)."""
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


def to_tensor(frames):
    """uint8 [T, H, W, 3] -> float [3, T, H, W] in [-1, 1]."""
    import torch

    return torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0
