"""Checks the PyTorch modules against the shared parity bundles, checks that the training
form of the generator equals the AR loop, and (with --weights) writes replay bundles of
the trained model in the FORMAT.md layout.

    python weights/train/check_parity.py [--parity ../shared/parity] \
        [--weights weights/tiny --bundle-out weights/train/bundle-tiny]

Exit status 1 when any tensor is off by more than --tol x std(expected).
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vssm.dit import DiT, ARCache, delta_chunked, scan_delta  # noqa: E402
from vssm.sample import generate  # noqa: E402
from vssm.t5 import T5Encoder, encode_prompt  # noqa: E402
from vssm.vae import WanVAE  # noqa: E402


def rel_err(got, exp):
    return max(((got[k] - exp[k]).abs().max() / exp[k].std()).item() for k in exp)


def run_dit(d, memory=True):
    """memory=False: the same weights with the memory switched off (window only)."""
    cfg = json.load(open(f"{d}/config.json"))
    gen = json.load(open(f"{d}/generation.json"))
    sd = load_file(f"{d}/model.safetensors")
    model = DiT(cfg, memory=any(".memory." in k for k in sd))
    model.load_state_dict(sd)
    inp = load_file(f"{d}/inputs.safetensors")
    rec = {}
    rec["latents"] = generate(model, inp["context"], inp["noise"], gen, cfg["local_attn_size"], cfg["sink_size"],
                              renoise=lambda c, s: inp[f"renoise.{c}.{s}"], record=rec, memory=memory)
    return rec


def memory_off_check(d):
    """MEMORY.md B.5/B.6: before the first eviction S = 0, so the bundle's chunks 0-2 equal
    the model run without memory; returns (worst error over chunks 0-2, smallest
    difference over the later chunks' flows: it must be far above the tolerance, or the
    bundle would not test the memory at all)."""
    off = run_dit(d, memory=False)
    exp = load_file(f"{d}/expected.safetensors")
    Fc = json.load(open(f"{d}/generation.json"))["num_frame_per_block"]

    def err(k, sl=slice(None)):
        return ((off[k][sl] - exp[k][sl]).abs().max() / exp[k].std()).item()

    early = max(err(k) for k in exp if k.startswith(("flow.", "x0.")) and int(k.split(".")[1]) < 3)
    early = max(early, err("latents", slice(0, 3 * Fc)))
    late = min(err(k) for k in exp if k.startswith("flow.") and int(k.split(".")[1]) >= 3)
    return early, late


@torch.no_grad()
def delta_rule_check():
    """The chunked WY/UT form of B.6 (delta_chunked, used by forward_train) equals the
    token-by-token rule (scan_delta, used by the AR loop): f64 and f32, block sizes that do
    and do not divide the length (1 token included), state read at block and non-block
    boundaries, a nonzero starting state, beta near 0 and near 1, repeated keys, strong
    decay (prod a underflows within a block). Returns the worst error / max|S| in f32 and
    f64, and whether gradients through the chunked form are finite."""
    g = torch.Generator().manual_seed(0)
    worst = {torch.float32: 0.0, torch.float64: 0.0}
    for dt in worst:
        for case in ["mid", "beta0", "beta1", "repeat", "strong"]:
            B, M, H, d = 2, 37, 3, 8
            kh = torch.nn.functional.normalize(torch.randn(B, M, H, d, generator=g, dtype=dt), dim=-1)
            if case == "repeat":
                kh[:, 1::2] = kh[:, :1]
            v = torch.randn(B, M, H, d, generator=g, dtype=dt)
            beta = torch.sigmoid(torch.randn(B, M, H, generator=g, dtype=dt) + {"beta0": -14.0, "beta1": 14.0}.get(case, 0.0))
            log_a = -torch.rand(B, M, H, generator=g, dtype=dt) * (80.0 if case == "strong" else 0.3)
            S0 = torch.randn(B, H, d, d, generator=g, dtype=dt)
            at = [0, 3, 16, 20, 37]
            ref = torch.stack([scan_delta(S0, kh[:, :n], v[:, :n], beta[:, :n], log_a[:, :n]) for n in at], 1)
            scale = ref.abs().max().item()
            for block in [1, 5, 16, 64]:
                got = delta_chunked(S0, kh, v, beta, log_a, block=block, at=at)
                worst[dt] = max(worst[dt], (got - ref).abs().max().item() / scale)
            # across calls: chunk-by-chunk (the AR loop's evictions) == one call
            S = S0
            for a, b in [(0, 7), (7, 8), (8, 30), (30, 37)]:
                S = delta_chunked(S, kh[:, a:b], v[:, a:b], beta[:, a:b], log_a[:, a:b], block=4)
            worst[dt] = max(worst[dt], (S - ref[:, -1]).abs().max().item() / scale)
    with torch.enable_grad():
        x = [torch.randn(1, 20, 2, 4).requires_grad_() for _ in range(4)]
        kh = torch.nn.functional.normalize(x[0], dim=-1)
        out = delta_chunked(torch.zeros(2, 4, 4), kh, x[1], torch.sigmoid(x[2][..., 0]), -80 * torch.sigmoid(x[3][..., 0]), block=8)
        out.square().sum().backward()
        finite = all(torch.isfinite(t.grad).all().item() for t in x)
    return worst[torch.float32], worst[torch.float64], finite


@torch.no_grad()
def run_vae(d):
    vae = WanVAE(json.load(open(f"{d}/config.json")))
    missing = vae.load_state_dict(load_file(f"{d}/vae.safetensors"), strict=False).missing_keys
    # a decoder-only file (the trained tiny model) is complete for decoding
    assert not [k for k in missing if k.startswith(("decoder.", "conv2."))], missing
    lat = load_file(f"{d}/inputs.safetensors")["latents"]
    v = vae.decode(lat.transpose(0, 1)[None])[0].transpose(0, 1).contiguous()
    return {"video": v, "video_streamed": v}


@torch.no_grad()
def run_t5(d):
    t5 = T5Encoder(json.load(open(f"{d}/config.json")))
    t5.load_state_dict(load_file(f"{d}/t5.safetensors"))
    inp = load_file(f"{d}/inputs.safetensors")
    return {"context": t5(inp["ids"], inp["mask"])}


def run_bundle(d):
    if os.path.exists(f"{d}/generation.json"):
        return run_dit(d)
    if os.path.exists(f"{d}/vae.safetensors"):
        return run_vae(d)
    return run_t5(d)


@torch.no_grad()
def train_form_check(d):
    """forward_train (whole sequence, masks, parallel SSM) == the AR loop's passes."""
    cfg = json.load(open(f"{d}/config.json"))
    model = DiT(cfg)
    model.load_state_dict(load_file(f"{d}/model.safetensors"))
    ctx = load_file(f"{d}/inputs.safetensors")["context"]
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for L, sink in [(9, 3), (9, 0), (7, 1), (6, 3), (-1, 0)]:
        T, h, w = 18, 4, 4
        z, x = torch.randn(2, T, 16, h, w, generator=g), torch.randn(2, T, 16, h, w, generator=g)
        t = (torch.rand(2, T // 3, generator=g) * 1000).repeat_interleave(3, 1)
        out = model.forward_train(z, x, t, ctx[None].expand(2, -1, -1), 3, L, sink)
        for b in range(2):
            cache = ARCache(model, L, sink, (h // 2) * (w // 2))
            for c in range(T // 3):
                sl = slice(3 * c, 3 * c + 3)
                v = model.step(cache, x[b, sl], t[b, 3 * c].item(), 3 * c, ctx, write=False)
                worst = max(worst, ((v - out[b, sl]).abs().max() / v.std()).item())
                model.step(cache, z[b, sl], 0, 3 * c, ctx, write=True)
    return worst


@torch.no_grad()
def write_bundles(wdir, out, prompt, latent_frames, seed):
    """Replay bundles of the trained model (dit, vae, t5) as FORMAT.md lays them out."""
    from tokenizers import Tokenizer

    cfg = json.load(open(f"{wdir}/config.json"))
    gen = json.load(open(f"{wdir}/generation.json"))
    tcfg = json.load(open(f"{wdir}/t5_config.json"))
    vcfg = json.load(open(f"{wdir}/vae_config.json"))
    tok = Tokenizer.from_file(f"{wdir}/tokenizer.json")
    t5 = T5Encoder(tcfg)
    t5.load_state_dict(load_file(f"{wdir}/t5.safetensors"))
    ids, mask = encode_prompt(tok, prompt, cfg["text_len"])
    ctx = t5(ids[None], mask[None])
    os.makedirs(f"{out}/t5", exist_ok=True)
    json.dump(tcfg, open(f"{out}/t5/config.json", "w"), indent=1)
    link_weights(f"{wdir}/t5.safetensors", f"{out}/t5/t5.safetensors")
    save_file({"ids": ids[None].contiguous(), "mask": mask[None].contiguous()}, f"{out}/t5/inputs.safetensors")
    save_file({"context": ctx.contiguous()}, f"{out}/t5/expected.safetensors")

    g = torch.Generator().manual_seed(seed)
    h, w = gen["latent_height"], gen["latent_width"]
    noise = torch.randn(latent_frames, cfg["in_dim"], h, w, generator=g)
    Fc = gen["num_frame_per_block"]
    renoise = {f"renoise.{c}.{s}": torch.randn(Fc, cfg["in_dim"], h, w, generator=g)
               for c in range(latent_frames // Fc) for s in range(1, len(gen["timesteps_used"]))}
    model = DiT(cfg)
    model.load_state_dict(load_file(f"{wdir}/model.safetensors"))
    rec = {}
    gen_b = dict(gen, num_latent_frames=latent_frames)
    rec["latents"] = generate(model, ctx[0], noise, gen_b, cfg["local_attn_size"], cfg["sink_size"],
                              renoise=lambda c, s: renoise[f"renoise.{c}.{s}"], record=rec)
    os.makedirs(f"{out}/dit", exist_ok=True)
    json.dump(cfg, open(f"{out}/dit/config.json", "w"), indent=1)
    json.dump(gen_b, open(f"{out}/dit/generation.json", "w"), indent=1)
    link_weights(f"{wdir}/model.safetensors", f"{out}/dit/model.safetensors")
    save_file(dict(renoise, context=ctx[0].contiguous(), noise=noise), f"{out}/dit/inputs.safetensors")
    save_file({k: v.contiguous() for k, v in rec.items()}, f"{out}/dit/expected.safetensors")

    vae = WanVAE(vcfg)
    vae.load_state_dict(load_file(f"{wdir}/vae.safetensors"), strict=False)  # decoder only
    lat = rec["latents"][:5]
    video = vae.decode(lat.transpose(0, 1)[None])[0].transpose(0, 1).contiguous()
    os.makedirs(f"{out}/vae", exist_ok=True)
    json.dump(dict(vcfg, streamed_chunks=[1, 4]), open(f"{out}/vae/config.json", "w"), indent=1)
    link_weights(f"{wdir}/vae.safetensors", f"{out}/vae/vae.safetensors")
    save_file({"latents": lat.contiguous()}, f"{out}/vae/inputs.safetensors")
    save_file({"video": video, "video_streamed": video.clone()}, f"{out}/vae/expected.safetensors")
    json.dump({"prompt": prompt, "seed": seed}, open(f"{out}/prompt.json", "w"), indent=1)
    return out


def link_weights(src, dst):
    """The bundle's weights as a relative link to the shipped file, not a second copy."""
    if os.path.lexists(dst):
        os.remove(dst)
    os.symlink(os.path.relpath(os.path.abspath(src), os.path.dirname(os.path.abspath(dst))), dst)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parity", default=os.path.normpath(os.path.join(here, "../../../shared/parity")))
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--weights", help="trained model folder (config.json, model.safetensors, ...)")
    ap.add_argument("--bundle-out", default=os.path.join(here, "bundle-tiny"))
    ap.add_argument("--prompt", default="a red circle and a blue square bouncing on black")
    ap.add_argument("--latent-frames", type=int, default=18)
    a = ap.parse_args()
    torch.set_num_threads(1)
    ok = True
    if not os.path.isdir(a.parity):
        sys.exit(f"{a.parity} is missing: the parity bundles live in the project's shared/ folder beside the checkout (or pass --parity)")
    names = sorted(n for n in os.listdir(a.parity) if os.path.isdir(os.path.join(a.parity, n)))
    if not names:
        sys.exit(f"no parity bundles under {a.parity} (the project's shared/ folder beside the checkout; or pass --parity)")
    for n in names:
        d = os.path.join(a.parity, n)
        err = rel_err(run_bundle(d), load_file(f"{d}/expected.safetensors"))
        ok &= err <= a.tol
        print(f"{n:17s} max|err|/std = {err:.2e} {'ok' if err <= a.tol else 'FAIL'}")
    for n in ["dit-memory", "dit-memory-gd"]:
        mem = os.path.join(a.parity, n)
        if not os.path.isdir(mem):
            continue
        early, late = memory_off_check(mem)
        ok &= early <= a.tol and late > 100 * a.tol
        print(f"{n + ' off':17s} chunks 0-2 without memory max|err|/std = {early:.2e}, chunks 3+ differ by >= {late:.2e} "
              f"{'ok' if early <= a.tol and late > 100 * a.tol else 'FAIL'}")
        err = train_form_check(mem)
        ok &= err <= a.tol
        print(f"{'train-form':17s} max|err|/std = {err:.2e} {'ok' if err <= a.tol else 'FAIL'} (forward_train vs AR loop, {n})")
    e32, e64, finite = delta_rule_check()
    good = e32 <= 1e-5 and e64 <= 1e-12 and finite
    ok &= good
    print(f"{'delta-rule':17s} chunked WY/UT vs token by token: max|err|/max|S| = {e32:.2e} (f32), {e64:.2e} (f64), "
          f"grads {'finite' if finite else 'NOT finite'} {'ok' if good else 'FAIL'}")
    if a.weights:
        out = write_bundles(a.weights, a.bundle_out, a.prompt, a.latent_frames, seed=1)
        for k in ["dit", "vae", "t5"]:
            d = os.path.join(out, k)
            err = rel_err(run_bundle(d), load_file(f"{d}/expected.safetensors"))
            print(f"tiny/{k:7s} replays at {err:.2e} (written to {d})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
