"""The runtime's AR loop (FORMAT.md "How the expected tensors were produced")."""
import torch

from .dit import ARCache


def sigmas_from(gen):
    """The timesteps/sigmas the step list resolves to (MODEL.md A.5)."""
    steps = torch.tensor(gen["denoising_step_list"], dtype=torch.float32)
    n = gen["num_train_timestep"]
    s = gen["timestep_shift"]
    if gen["warp_denoising_step"]:
        base = torch.linspace(1.0, 0.0, n + 1)[:n]
        base = s * base / (1 + (s - 1) * base)
        t_all = base * n
        t = t_all[(n - steps).long()]
    else:
        t = steps
    return t.tolist(), (t / n).tolist()


@torch.no_grad()
def generate(model, ctx, noise, gen, L, sink, renoise=None, memory=True, record=None, seed=0, prefix=None,
             deterministic=False):
    """noise [(B,) T, C, h, w] (with B, ctx is [B, text_len, text_dim]: B videos at once);
    renoise(c, s) -> [F, C, h, w] or None for a seeded draw.
    deterministic: move between levels with the model's own noise estimate instead of a
    fresh draw (the flow ODE's Euler step; the teacher's sampler, not the runtime's).
    record: optional dict that receives flow.<c>.<s> and x0.<c>.<s>.
    prefix: latents [P, C, h, w] taken as the first P // F chunks instead of sampling them
    (they go through the context pass like sampled ones): continuation from given frames."""
    T, C, h, w = noise.shape[-4:]
    Fc = gen["num_frame_per_block"]
    ts, sig = gen.get("timesteps_used"), gen.get("sigmas_used")
    if ts is None:
        ts, sig = sigmas_from(gen)
    P = (h // 2) * (w // 2)
    cache = ARCache(model, L, sink, P, memory=memory)
    g = torch.Generator().manual_seed(seed)
    out = []
    given = 0 if prefix is None else prefix.shape[-4] // Fc
    for c in range(T // Fc):
        x = noise[..., c * Fc:(c + 1) * Fc, :, :, :]
        if c < given:
            x0 = prefix[..., c * Fc:(c + 1) * Fc, :, :, :]
        for s in range(len(ts) if c >= given else 0):
            v = model.step(cache, x, ts[s], c * Fc, ctx, write=False)
            x0 = x - sig[s] * v
            if record is not None:
                record[f"flow.{c}.{s}"] = v.clone()
                record[f"x0.{c}.{s}"] = x0.clone()
            if s + 1 < len(ts):
                if deterministic:
                    eps = (x - (1 - sig[s]) * x0) / sig[s]
                else:
                    eps = renoise(c, s + 1) if renoise is not None else torch.randn(x.shape, generator=g)
                x = (1 - sig[s + 1]) * x0 + sig[s + 1] * eps
        model.step(cache, x0, gen["context_noise"], c * Fc, ctx, write=True)
        out.append(x0)
    return torch.cat(out, -4)
