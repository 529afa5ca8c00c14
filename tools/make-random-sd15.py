#!/usr/bin/env python3
"""Write a random-weight Stable Diffusion 1.5 checkpoint (GGUF) that koboldcpp 1.76 loads.

Why: the tests run a real koboldcpp's image path (CLIP-L text encoder, SD1.x UNet sampling,
VAE decode for txt2img and encode for img2img, PNG encoding, /sdapi/v1/txt2img and
/sdapi/v1/img2img) where no real SD model can be downloaded. The weights are seeded noise,
so the pictures are noise by design. tests/real_servers.py runs it once into the cache.

Usage:
    python tools/make-random-sd15.py OUT.gguf [--seed 0] [--std 0.02]
    python3 KOBOLD/koboldcpp.py --sdmodel OUT.gguf --port 5001 --threads 2 --quiet --skiplauncher

Needs only numpy; deterministic for given options; 0.3 s, 93 MiB. All 1130 tensors
(1,066,235,307 parameters) of SD1.5 are present, because stable-diffusion.cpp refuses a file
that lacks any of them, but the file is small: every tensor of one stored type points at a
seeded window of ONE random blob (tensor data offsets overlap). koboldcpp 1.76's ggml reads
each tensor by seek+read and does not check offsets, so it loads and draws as with a full
file; newer ggml ("tensor ... has offset X, expected Y") and strict GGUF readers reject it.

koboldcpp 1.76 measured (2 cores): ready ~3.5-5.5 s; RSS ~2.2 GB (sd.cpp converts matrices
to F16 on load); txt2img 64x64 1 step ~1.7 s, 4 steps ~3.5 s; img2img 64x64 ~2.3 s.
It needs a koboldcpp built with the real otherarch/sdcpp/vocab.hpp (tools/make-sd-vocab-hpp.py);
with the upstream 2-byte stub any SD model aborts at load.

Format notes (checked against koboldcpp 1.76 otherarch/sdcpp: model.cpp, unet.hpp, clip.hpp,
vae.hpp): GGUF v3, alignment 32, no required metadata keys; original LDM/CompVis names
(model.diffusion_model.*, cond_stage_model.transformer.text_model.*, first_stage_model.*);
version detection sees a 768-wide token embedding and no second text encoder -> "1.x".
Linear weights and the token embedding are Q4_0 (real ggml blocks quantized from
normal*std), convolution kernels F16 (always F16 in sd.cpp), norms 1, biases 0, position
embedding F32. UNet: 320 channels, mult [1,2,4,4], 2 res blocks, attention at the first
three levels; CLIP ViT-L/14 text: vocab 49408, 77 positions, 12 layers; VAE: ch 128, mult
[1,2,4,4], z 4 (parameter counts match SD1.5 exactly).
"""

import argparse
import struct
import sys
import time

import numpy as np

GGML_F32, GGML_F16, GGML_Q4_0 = 0, 1, 2
BLOCK = {GGML_F32: (1, 4), GGML_F16: (1, 2), GGML_Q4_0: (32, 18)}  # (elements, bytes)
ALIGN = 32
# kinds: "mat" = Linear weight / token embedding (Q4_0), "conv" = conv kernel (F16),
#        "rand32" = small random F32, "ones" / "zeros" = F32 constants
KIND_TYPE = {"mat": GGML_Q4_0, "conv": GGML_F16, "rand32": GGML_F32, "ones": GGML_F32}
KIND_TYPE["zeros"] = GGML_F32
# The blob each kind's windows point into.
BLOB = {k: ("rand" if k in ("mat", "conv") else k, t) for k, t in KIND_TYPE.items()}


class Tensors:
    """(name, numpy_shape, kind) for every tensor sd.cpp's SD1.x model needs, in order."""

    def __init__(self) -> None:
        self.out: list[tuple[str, tuple[int, ...], str]] = []

    def lin(self, name: str, n_out: int, n_in: int, bias: bool = True) -> None:
        self.out.append((name + ".weight", (n_out, n_in), "mat"))
        if bias:
            self.out.append((name + ".bias", (n_out,), "zeros"))

    def conv(self, name: str, n_out: int, n_in: int, k: int) -> None:
        self.out.append((name + ".weight", (n_out, n_in, k, k), "conv"))
        self.out.append((name + ".bias", (n_out,), "zeros"))

    def norm(self, name: str, n: int) -> None:
        self.out.append((name + ".weight", (n,), "ones"))
        self.out.append((name + ".bias", (n,), "zeros"))


def clip_text(ts: Tensors) -> None:
    """CLIP ViT-L/14 text encoder (HF naming under cond_stage_model.transformer)."""
    t = "cond_stage_model.transformer.text_model"
    ts.out.append((t + ".embeddings.token_embedding.weight", (49408, 768), "mat"))
    ts.out.append((t + ".embeddings.position_embedding.weight", (77, 768), "rand32"))
    for i in range(12):
        p = f"{t}.encoder.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            ts.lin(f"{p}.self_attn.{proj}", 768, 768)
        ts.norm(p + ".layer_norm1", 768)
        ts.norm(p + ".layer_norm2", 768)
        ts.lin(p + ".mlp.fc1", 3072, 768)
        ts.lin(p + ".mlp.fc2", 768, 3072)
    ts.norm(t + ".final_layer_norm", 768)


U, MC, EMB, CTX = "model.diffusion_model", 320, 1280, 768
MULTS, ATTN_LEVELS = (1, 2, 4, 4), (0, 1, 2)


def resblock(ts: Tensors, p: str, cin: int, cout: int) -> None:
    ts.norm(p + ".in_layers.0", cin)
    ts.conv(p + ".in_layers.2", cout, cin, 3)
    ts.lin(p + ".emb_layers.1", cout, EMB)
    ts.norm(p + ".out_layers.0", cout)
    ts.conv(p + ".out_layers.3", cout, cout, 3)
    if cin != cout:
        ts.conv(p + ".skip_connection", cout, cin, 1)


def transformer(ts: Tensors, p: str, ch: int) -> None:
    ts.norm(p + ".norm", ch)
    ts.conv(p + ".proj_in", ch, ch, 1)
    b = p + ".transformer_blocks.0"
    for a, kv_dim in (("attn1", ch), ("attn2", CTX)):
        ts.lin(f"{b}.{a}.to_q", ch, ch, bias=False)
        ts.lin(f"{b}.{a}.to_k", ch, kv_dim, bias=False)
        ts.lin(f"{b}.{a}.to_v", ch, kv_dim, bias=False)
        ts.lin(f"{b}.{a}.to_out.0", ch, ch)
    ts.lin(b + ".ff.net.0.proj", ch * 4 * 2, ch)  # GEGLU: value half + gate half
    ts.lin(b + ".ff.net.2", ch, ch * 4)
    for n in ("norm1", "norm2", "norm3"):
        ts.norm(f"{b}.{n}", ch)
    ts.conv(p + ".proj_out", ch, ch, 1)


def unet(ts: Tensors) -> None:
    """The UNet (ldm openaimodel naming)."""
    ts.lin(U + ".time_embed.0", EMB, MC)
    ts.lin(U + ".time_embed.2", EMB, EMB)
    ts.conv(U + ".input_blocks.0.0", MC, 4, 3)
    chans, ch, idx = [MC], MC, 0
    for lvl, m in enumerate(MULTS):
        for _ in range(2):
            idx += 1
            resblock(ts, f"{U}.input_blocks.{idx}.0", ch, m * MC)
            ch = m * MC
            if lvl in ATTN_LEVELS:
                transformer(ts, f"{U}.input_blocks.{idx}.1", ch)
            chans.append(ch)
        if lvl != len(MULTS) - 1:
            idx += 1
            ts.conv(f"{U}.input_blocks.{idx}.0.op", ch, ch, 3)
            chans.append(ch)
    resblock(ts, U + ".middle_block.0", ch, ch)
    transformer(ts, U + ".middle_block.1", ch)
    resblock(ts, U + ".middle_block.2", ch, ch)
    idx = 0
    for lvl in reversed(range(len(MULTS))):
        m = MULTS[lvl]
        for j in range(3):
            ich = chans.pop()
            resblock(ts, f"{U}.output_blocks.{idx}.0", ch + ich, m * MC)
            ch = m * MC
            up = 1
            if lvl in ATTN_LEVELS:
                transformer(ts, f"{U}.output_blocks.{idx}.1", ch)
                up = 2
            if lvl > 0 and j == 2:
                ts.conv(f"{U}.output_blocks.{idx}.{up}.conv", ch, ch, 3)
            idx += 1
    ts.norm(U + ".out.0", MC)
    ts.conv(U + ".out.2", 4, MC, 3)


def vres(ts: Tensors, p: str, cin: int, cout: int) -> None:
    ts.norm(p + ".norm1", cin)
    ts.conv(p + ".conv1", cout, cin, 3)
    ts.norm(p + ".norm2", cout)
    ts.conv(p + ".conv2", cout, cout, 3)
    if cin != cout:
        ts.conv(p + ".nin_shortcut", cout, cin, 1)


def vmid(ts: Tensors, p: str, c: int) -> None:
    vres(ts, p + ".mid.block_1", c, c)
    ts.norm(p + ".mid.attn_1.norm", c)
    for n in ("q", "k", "v", "proj_out"):
        ts.conv(f"{p}.mid.attn_1.{n}", c, c, 1)
    vres(ts, p + ".mid.block_2", c, c)


def vae(ts: Tensors) -> None:
    """The VAE (AutoencoderKL, ldm naming): the encoder too, for img2img."""
    v, vch, vmult, z = "first_stage_model", 128, (1, 2, 4, 4), 4
    e = v + ".encoder"
    ts.conv(e + ".conv_in", vch, 3, 3)
    bi = vch
    for i, m in enumerate(vmult):
        for j in range(2):
            vres(ts, f"{e}.down.{i}.block.{j}", bi, vch * m)
            bi = vch * m
        if i != len(vmult) - 1:
            ts.conv(f"{e}.down.{i}.downsample.conv", bi, bi, 3)
    vmid(ts, e, bi)
    ts.norm(e + ".norm_out", bi)
    ts.conv(e + ".conv_out", 2 * z, bi, 3)
    ts.conv(v + ".quant_conv", 2 * z, 2 * z, 1)
    ts.conv(v + ".post_quant_conv", z, z, 1)
    d = v + ".decoder"
    bi = vch * vmult[-1]
    ts.conv(d + ".conv_in", bi, z, 3)
    vmid(ts, d, bi)
    for i in reversed(range(len(vmult))):
        for j in range(3):
            vres(ts, f"{d}.up.{i}.block.{j}", bi, vch * vmult[i])
            bi = vch * vmult[i]
        if i != 0:
            ts.conv(f"{d}.up.{i}.upsample.conv", bi, bi, 3)
    ts.norm(d + ".norm_out", bi)
    ts.conv(d + ".conv_out", 3, bi, 3)


def sd15_tensors() -> list[tuple[str, tuple[int, ...], str]]:
    ts = Tensors()
    clip_text(ts)
    unet(ts)
    vae(ts)
    return ts.out


def quantize_q4_0(x: np.ndarray) -> np.ndarray:
    """ggml quantize_row_q4_0_reference on x of shape (nblocks, 32) -> (nblocks, 18) uint8."""
    idx = np.abs(x).argmax(axis=1)
    mx = x[np.arange(len(x)), idx]
    d = (mx / -8.0).astype(np.float32)
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.minimum(15, (x * inv[:, None] + 8.5).astype(np.int8)).astype(np.uint8)
    out = np.empty((len(x), 18), np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out


class Pool:
    """Seeded random data, drawn once; blobs are filled from slices at random offsets."""

    def __init__(self, rng: np.random.Generator, std: float, elems: int = 1 << 22) -> None:
        self.rng = rng
        self.chunk = 1 << 16
        normal = rng.standard_normal(elems + self.chunk, dtype=np.float32) * np.float32(std)
        self.pools = {
            GGML_F16: normal.astype("<f2").view(np.uint8),  # 2 bytes per element
            GGML_Q4_0: quantize_q4_0(normal.reshape(-1, 32)).reshape(-1),
        }

    def write(self, f, ggml_type: int, n_elems: int) -> None:
        """Write n_elems random values of ggml_type (F16 / Q4_0) to f."""
        blk_elems, blk_bytes = BLOCK[ggml_type]
        pool = self.pools[ggml_type]
        n_blocks = n_elems // blk_elems
        chunk_blocks = self.chunk // blk_elems
        pool_blocks = len(pool) // blk_bytes - chunk_blocks
        offs = self.rng.integers(0, pool_blocks, size=-(-n_blocks // chunk_blocks))
        done = 0
        for o in offs:
            take = min(chunk_blocks, n_blocks - done)
            f.write(memoryview(pool[o * blk_bytes : (o + take) * blk_bytes]))
            done += take


def pad(n: int, a: int = ALIGN) -> int:
    return -(-n // a) * a


def place(specs: list, rng: np.random.Generator) -> tuple[list[list], list[tuple], int]:
    """Rows [name, shape, kind, type, n_elems, nbytes, offset] and the blobs (key, offset,
    size) they point into: each tensor at a seeded window of its blob, windows starting at
    multiples of lcm(block bytes, 32) so that quantized blocks stay whole."""
    rows = []
    for name, shape, kind in specs:
        gt = KIND_TYPE[kind]
        n = int(np.prod(shape))
        blk_elems, blk_bytes = BLOCK[gt]
        if shape[-1] % blk_elems:
            sys.exit(f"internal error: {name} {shape} not divisible into blocks")
        rows.append([name, shape, kind, gt, n, n // blk_elems * blk_bytes, 0])
    need: dict[tuple[str, int], int] = {}
    for r in rows:
        need[BLOB[r[2]]] = max(need.get(BLOB[r[2]], 0), r[5])
    regions, off, base = [], 0, {}
    for key, nb in need.items():
        slack = 8 << 20 if key[0] == "rand" else 0
        size = pad(nb + slack, 32 * BLOCK[key[1]][1])
        base[key] = off
        regions.append((key, off, size))
        off += size
    for r in rows:
        key = BLOB[r[2]]
        size = next(reg[2] for reg in regions if reg[0] == key)
        step = int(np.lcm(BLOCK[key[1]][1], ALIGN))
        r[6] = base[key] + int(rng.integers(0, (size - r[5]) // step + 1)) * step
    return rows, regions, off


def gguf_str(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def header(rows: list[list], seed: int, std: float) -> bytes:
    description = (
        "Random-weight Stable Diffusion 1.5 (LDM naming) for testing image-generation code "
        f"paths only; outputs are noise. seed={seed} std={std} matrix_type=q4_0 layout=shared"
    )
    kvs = [  # 8 = GGUF_TYPE_STRING, 4 = GGUF_TYPE_UINT32
        gguf_str("general.name") + struct.pack("<I", 8) + gguf_str("random-sd15"),
        gguf_str("general.description") + struct.pack("<I", 8) + gguf_str(description),
        gguf_str("general.alignment") + struct.pack("<II", 4, ALIGN),
    ]
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(rows), len(kvs)))
    for kv in kvs:
        out += kv
    for name, shape, _, gt, _, _, off in rows:
        out += gguf_str(name) + struct.pack("<I", len(shape))
        out += struct.pack(f"<{len(shape)}Q", *reversed(shape))
        out += struct.pack("<IQ", gt, off)
    return bytes(out + b"\0" * (-len(out) % ALIGN))


def write_blobs(f, regions: list[tuple], rng: np.random.Generator, std: float) -> None:
    pool = Pool(rng, std)
    for (what, gt), _, size in regions:
        blk_elems, blk_bytes = BLOCK[gt]
        n = size // blk_bytes * blk_elems
        if what == "rand":
            pool.write(f, gt, n)
        elif what == "ones":
            f.write(np.ones(n, "<f4").tobytes())
        elif what == "zeros":
            f.write(bytes(n * BLOCK[gt][1]))
        else:  # rand32
            f.write((rng.standard_normal(n, dtype=np.float32) * np.float32(std)).tobytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output .gguf path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--std", type=float, default=0.02, help="std of the random weights")
    args = ap.parse_args()
    t0 = time.time()
    specs = sd15_tensors()
    if len({s[0] for s in specs}) != len(specs):
        sys.exit("internal error: duplicate tensor names")
    rng = np.random.default_rng(args.seed)
    rows, regions, data_size = place(specs, rng)
    head = header(rows, args.seed, args.std)
    with open(args.out, "wb") as f:
        f.write(head)
        write_blobs(f, regions, rng, args.std)
        size = f.tell()
    if size != len(head) + data_size:
        sys.exit(f"internal error: wrote {size} bytes, expected {len(head) + data_size}")
    n_params = sum(r[4] for r in rows)
    print(
        f"wrote {args.out}: {len(rows)} tensors, {n_params:,d} params, {size / 2**20:.1f} MiB"
        f" (matrices q4_0, convs f16, shared layout) in {time.time() - t0:.1f}s"
    )


if __name__ == "__main__":
    main()
