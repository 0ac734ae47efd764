"""A seeded procedural world: 1-3 sprites bouncing off the walls of a plain background.
The sprites start at fixed slots and move off in fixed headings (both by their number
and prompt order), at one speed: the prompt decides the whole motion.

What the prompt does not decide is each sprite's colour: the prompt names shapes and the
background ("a circle and a square bouncing on black"), and the colours are drawn at
random (distinct, none the background's). A generator decides them in the first chunk,
from its noise, and has to keep them. The box the sprites bounce in is wider than the
view (`BAY` pixels off its right edge), so every sprite leaves the frame now and then for
longer than the generator's window (9 latent frames = 36 video frames) and comes back:
only a memory of the evicted frames still knows its colour then.

`clip(seed, frames)` returns uint8 frames [T, H, W, 3] at 16 fps, the prompt, and the
ground truth (per frame: centre, visibility and colour of each object). `recolour=True`
is the control world: a sprite that comes back into view has a fresh random colour.
"""
import numpy as np

SIZE = 64
COLOURS = {
    "red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 240), "yellow": (240, 220, 40),
    "cyan": (40, 220, 230), "magenta": (220, 50, 220), "orange": (250, 140, 20), "white": (245, 245, 245),
}
BACKGROUNDS = {"black": (0, 0, 0), "gray": (128, 128, 128), "white": (245, 245, 245)}
SHAPES = ["circle", "square", "triangle"]
WORDS = list(BACKGROUNDS) + SHAPES + ["a", "and", "bouncing", "on", ","]


def prompt_of(objs, bg):
    names = [f"a {o['shape']}" for o in objs]
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
# One size and one speed, for the same reason. BAY: the box's width beyond the view. A
# sprite heading right at the default 0.8 px/frame is out of view for 55 frames (1.5
# windows) per 215-frame period; the scenes' slower horizontal headings stay out longer.
RADIUS, SPEED, BAY = 9.0, 1.0, 40


def objects(named):
    """The sprites of a scene from its (colour, shape) pairs in prompt order."""
    n = len(named)
    return [{"colour": c, "shape": sh, "r": RADIUS, "pos": np.array(pos, float),
             "vel": SPEED * np.array([np.cos(ang), np.sin(ang)])}
            for (c, sh), pos, ang in zip(named, SLOTS[n], HEADINGS[n])]


def palette(bg):
    return [c for c in COLOURS if c != bg]


def sample_scene(rng):
    """Distinct shapes, so that a sprite whose colour is not named is known by its shape."""
    bg = str(rng.choice(list(BACKGROUNDS)))
    n = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
    cols = rng.choice(palette(bg), size=n, replace=False)
    shapes = rng.choice(SHAPES, size=n, replace=False)
    return objects([(str(c), str(sh)) for c, sh in zip(cols, shapes)]), bg


def simulate(objs, frames):
    """Centres [T, n, 2] (x, y) with elastic bounces off the walls of the box (the view
    plus the bay to its right)."""
    out = np.zeros((frames, len(objs), 2))
    for i, o in enumerate(objs):
        p, v, r = o["pos"].copy(), o["vel"].copy(), o["r"]
        for t in range(frames):
            out[t, i] = p
            p = p + v
            for a, far in ((0, SIZE + BAY), (1, SIZE)):
                if p[a] < r:
                    p[a], v[a] = 2 * r - p[a], -v[a]
                elif p[a] > far - r:
                    p[a], v[a] = 2 * (far - r) - p[a], -v[a]
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


def in_view(objs, centres):
    """[T, n] bool: some pixel of the sprite is inside the view."""
    return centres[..., 0] - np.array([o["r"] for o in objs]) < SIZE


def render(objs, bg, centres, colours):
    """colours [T][n] colour names (a sprite out of view draws nothing anyway)."""
    T = centres.shape[0]
    img = np.empty((T, SIZE, SIZE, 3), np.float32)
    img[:] = np.array(BACKGROUNDS[bg], np.float32)
    for t in range(T):
        for i, o in enumerate(objs):
            m = coverage(o["shape"], centres[t, i, 0], centres[t, i, 1], o["r"])[..., None]
            img[t] = img[t] * (1 - m) + m * np.array(COLOURS[colours[t][i]], np.float32)
    return np.round(img).astype(np.uint8)


def clip(seed, frames, skip=0, recolour=False):
    """skip: start that many frames into the scene (the autoencoder's short clips then
    show sprites anywhere, the generator's clips any part of a minute's trajectories).
    recolour: the control world, where a sprite gets a fresh colour (any of the palette
    but the other sprites' colours, its own included) each time it comes back into view."""
    rng = np.random.default_rng(seed)
    objs, bg = sample_scene(rng)
    centres = simulate(objs, skip + frames)[skip:]
    visible = in_view(objs, centres)
    colours = [[o["colour"] for o in objs] for _ in range(frames)]
    for t in range(1, frames):
        for i in range(len(objs)):
            back = visible[t, i] and not visible[t - 1, i]
            others = colours[t][:i] + colours[t - 1][i + 1:]  # a scene's colours stay distinct
            colours[t][i] = str(rng.choice([c for c in palette(bg) if c not in others])) if recolour and back else colours[t - 1][i]
    return render(objs, bg, centres, colours), prompt_of(objs, bg), {"objs": objs, "bg": bg, "centres": centres,
                                                                      "visible": visible, "colours": colours}


def to_tensor(frames):
    """uint8 [T, H, W, 3] -> float [3, T, H, W] in [-1, 1]."""
    import torch

    return torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0
