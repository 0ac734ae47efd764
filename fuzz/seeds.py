"""Writes the seed corpus of the fuzz targets (seeds/<target>/): one small valid
input of each kind, so the fuzzer starts inside the formats rather than at random.
Run: python3 seeds.py  (from this folder; needs no torch)
"""
import json, os, pathlib, runpy, shutil, struct, tempfile, io, pickle, collections

here = pathlib.Path(__file__).resolve().parent
repo = here.parent
seeds = here / "seeds"
shutil.rmtree(seeds, ignore_errors=True)

def put(target, name, data):
    d = seeds / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())

def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] -> the file's bytes."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, b in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

f32 = lambda n, v=0.5: struct.pack(f"<{n}f", *[v] * n)

# safetensors: several dtypes, a scalar, an empty tensor, metadata.
put("safetensors", "small.safetensors", safetensors([
    ("blocks.0.weight", "F32", [2, 3], f32(6)),
    ("blocks.0.bias", "BF16", [3], b"\x80\x3f" * 3),
    ("scale", "F16", [], b"\x00\x3c"),
    ("empty", "I64", [0, 4], b""),
    ("mask", "BOOL", [2], b"\x01\x00"),
], {"format": "pt"}))

# .pt files and pickles: the stand-in torch of the weights fixtures.
fixtures = repo / "weights/tests/fixtures"
with tempfile.TemporaryDirectory() as tmp:
    cwd = os.getcwd(); os.chdir(tmp)
    try:
        ns = runpy.run_path(str(fixtures / "make_pth.py"))
    finally:
        os.chdir(cwd)
for name in ["selfforcing.pt", "transposed.pt"]:
    put("pth", name, (fixtures / name).read_bytes())
# The pickle target supplies storages data/0 (64 bytes) and data/1 (6 bytes).
Storage, Tensor, torch = ns["Storage"], ns["Tensor"], ns["torch"]
a = Storage(torch.FloatStorage, "0", b"", 16)
h = Storage(torch.HalfStorage, "1", b"", 3)
sd = collections.OrderedDict()
sd["model.w"] = Tensor(a, 0, [4, 4], [4, 1], param=True)
sd["model.v"] = Tensor(a, 2, [2, 3], [3, 1])
sd["model.h"] = Tensor(h, 0, [3], [1])
for name, obj in [("state_dict.pkl", sd), ("nested.pkl", {"generator_ema": sd, "step": 7, "cfg": [1.5, "x", None, True]})]:
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=2)
    p.persistent_id = lambda o: ("storage", o.kind, o.key, "cpu", o.numel) if isinstance(o, Storage) else None
    p.dump(obj)
    put("pickle", name, buf.getvalue())

# Configs: the kind byte of fuzz_targets/config.rs, then the tiny model's JSON.
tiny = repo / "weights/tiny"
for kind, name in enumerate(["config.json", "generation.json", "t5_config.json", "vae_config.json"]):
    put("config", name, bytes([kind]) + (tiny / name).read_bytes())

put("prompts", "story.txt", "# a story\n0s: a cat sits\n12s: the cat jumps\n1m30s: the cat sleeps\n1h2m3.5s: night\n")
put("prompts", "one.txt", "0s: a red ball bouncing\n")

# A session snapshot of chunks [3 frames, 2 channels, 4x4] (4 tokens a frame), one block,
# after chunk 2 with a 6-frame window (24 cache rows), two chunks re-cacheable; in format 2
# with one VAE conv cache [2, 8, 8, 4], and in format 1 (no decoder caches).
chunk = 3 * 2 * 4 * 4
meta = {"tokens_written": "24", "frame0": "6", "context_t": "0",
        "history": "0:0,12:3", "rng": "12345", "seed": "1", "chunk": "2", "prompt": "a cat",
        "capacity": "6", "shape": "3,2,4,4"}
state = [
    ("state.blocks.0.cache_k", "F32", [24, 8], f32(192)),
    ("state.blocks.0.cache_v", "F32", [24, 8], f32(192)),
    ("state.blocks.0.ctx_k", "F32", [2, 8], f32(16)),
    ("state.blocks.0.ctx_v", "F32", [2, 8], f32(16)),
    ("history.0", "F32", [chunk], f32(chunk)),
    ("history.1", "F32", [chunk], f32(chunk, 0.25)),
]
put("snapshot", "state.safetensors", safetensors(
    state + [("decoder.decoder.conv1.cache", "F32", [2, 8, 8, 4], f32(512))],
    {**meta, "format": "videossm-snapshot-2", "decoder": "caches"}))
put("snapshot", "state-format1.safetensors", safetensors(state, {**meta, "format": "videossm-snapshot-1"}))
print("wrote", sorted(str(p.relative_to(here)) for p in seeds.rglob("*") if p.is_file()))
