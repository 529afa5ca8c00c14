#!/usr/bin/env python3
"""Write a tiny, random-weight LLaVA-1.5-style vision projector (mmproj) GGUF.

Why: the tests run a real llama.cpp server's (and koboldcpp's) image path -- JPEG/PNG decode,
resize and normalise, CLIP ViT encoder, MLP projector, embeddings injected into the text
model -- where no real vision model can be downloaded. The weights are seeded noise, so what
the text model says about a picture is meaningless by design. tests/real_servers.py runs
this once per projector into the cache (< 1 s; about 0.3-1.2 MB each).

Usage:
    python tools/make-tiny-mmproj.py --arch gemma3 --n-embd 640 --out tiny-mmproj.gguf
    python tools/make-tiny-mmproj.py --text-model MODEL.gguf --out tiny-mmproj.gguf
    python tools/make-tiny-mmproj.py --old --arch llama --n-embd 576 --out tiny-old.gguf

The projector's output width must be the text model's hidden size (`<arch>.embedding_length`;
llama.cpp refuses a mismatch): give it, or let it be read from the model (gguf's reader
takes ~15 s on a 262k-token vocabulary). Deterministic for given options.

Two loader generations:
  * new (llama.cpp's tools/mtmd/clip.cpp, as vendored in llama-cpp-python 0.3.36, and
    koboldcpp 1.76): 112 px images in 14 px patches -> 64 tokens per image, all F32.
  * --old (examples/llava/clip.cpp of the old-generation server llamafile forked, as in
    llama-cpp-python 0.2.53): 64 px in 16 px patches -> 16 tokens; v.patch_embd.weight must
    be F16 (that ggml's im2col asserts an F16 kernel; an all-F32 file aborts at the first
    image). Every key below is read unconditionally there.
Both: general.architecture "clip", projector_type "mlp" (mm.0 -> GELU -> mm.2), the keys
koboldcpp's older loader requires (has_text_encoder false, has_llava_projector true,
use_gelu, file_type, description), and the legacy LLaVA FFN naming (ffn_down = first
matmul, n_embd -> n_ff; new llama.cpp detects it and logs "ffn up/down are swapped"). The
graph runs block_count - 1 blocks (the penultimate layer), so 2 blocks means one runs.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

try:
    import gguf
except ImportError:  # pragma: no cover
    sys.exit("needs the 'gguf' package (pip install gguf numpy)")

# Shapes per loader generation: ViT width, FFN width (must differ from it), width between
# the projector's matmuls, image and patch size.
SHAPES = {
    "new": {"embd": 64, "ff": 128, "mm": 256, "image": 112, "patch": 14},
    "old": {"embd": 32, "ff": 64, "mm": 64, "image": 64, "patch": 16},
}
NAMES = {"new": "tiny-random-mmproj-for-{}-{}", "old": "tiny-random-mmproj-old-for-{}-{}"}
DESCRIPTIONS = {
    "new": "Tiny random-weight LLaVA-1.5-style (mlp) projector for testing the multimodal "
    "code path only; outputs are meaningless. seed={}",
    "old": "Tiny random-weight LLaVA-1.5 (mlp) projector for old llama.cpp clip.cpp loaders; "
    "tests the image code path only, outputs are meaningless. seed={}",
}
BLOCKS, HEADS = 2, 4


def text_hidden_size(path: str) -> tuple[str, int]:
    """(architecture, embedding_length) from a text model's GGUF metadata."""
    reader = gguf.GGUFReader(path)
    arch = reader.get_field("general.architecture")
    if arch is None:
        sys.exit(f"{path}: no general.architecture key; is it a GGUF text model?")
    n_embd = reader.get_field(f"{arch.contents()}.embedding_length")
    if n_embd is None:
        sys.exit(f"{path}: no {arch.contents()}.embedding_length key")
    return str(arch.contents()), int(n_embd.contents())


def tensors(gen: str, n_text: int, seed: int) -> dict[str, np.ndarray]:
    """Every tensor, in file order (numpy shapes are row-major; ggml's ne[] is reversed)."""
    s = SHAPES[gen]
    n_embd, n_ff, n_mm, ps = s["embd"], s["ff"], s["mm"], s["patch"]
    n_pos = (s["image"] // ps) ** 2 + 1  # + class token
    rng = np.random.default_rng(seed)

    def rand(*shape: int, std: float = 0.02, dtype: type = np.float32) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(dtype)

    def ones(n: int) -> np.ndarray:
        return np.ones((n,), dtype=np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros((n,), dtype=np.float32)

    patch_type = np.float16 if gen == "old" else np.float32
    out = {
        "v.class_embd": rand(n_embd),
        "v.patch_embd.weight": rand(n_embd, 3, ps, ps, dtype=patch_type),
        "v.position_embd.weight": rand(n_pos, n_embd),
        "v.pre_ln.weight": ones(n_embd),
        "v.pre_ln.bias": zeros(n_embd),
    }
    for i in range(BLOCKS):
        p = f"v.blk.{i}"
        for t in ("attn_q", "attn_k", "attn_v", "attn_out"):
            out[f"{p}.{t}.weight"] = rand(n_embd, n_embd)
            out[f"{p}.{t}.bias"] = zeros(n_embd)
        for t in ("ln1", "ln2"):
            out[f"{p}.{t}.weight"] = ones(n_embd)
            out[f"{p}.{t}.bias"] = zeros(n_embd)
        out[f"{p}.ffn_down.weight"] = rand(n_ff, n_embd)  # legacy: the first FFN matmul
        out[f"{p}.ffn_down.bias"] = zeros(n_ff)
        out[f"{p}.ffn_up.weight"] = rand(n_embd, n_ff)  # legacy: the second
        out[f"{p}.ffn_up.bias"] = zeros(n_embd)
    out["mm.0.weight"] = rand(n_mm, n_embd, std=0.1)
    out["mm.0.bias"] = zeros(n_mm)
    out["mm.2.weight"] = rand(n_text, n_mm, std=0.1)
    out["mm.2.bias"] = zeros(n_text)
    return out


def write(path: str, gen: str, arch: str, n_text: int, seed: int) -> int:
    s = SHAPES[gen]
    w = gguf.GGUFWriter(path, arch="clip")  # writes general.architecture = "clip"
    w.add_name(NAMES[gen].format(arch, n_text))
    w.add_description(DESCRIPTIONS[gen].format(seed))
    w.add_file_type(0)  # F32 (the old loader's patch_embd is F16 regardless)
    w.add_bool("clip.has_text_encoder", False)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_llava_projector", True)
    w.add_string("clip.projector_type", "mlp")
    w.add_bool("clip.use_gelu", False)  # False -> quick-GELU, as in CLIP ViT-L
    w.add_uint32("clip.vision.image_size", s["image"])
    w.add_uint32("clip.vision.patch_size", s["patch"])
    w.add_uint32("clip.vision.embedding_length", s["embd"])
    w.add_uint32("clip.vision.feed_forward_length", s["ff"])
    w.add_uint32("clip.vision.projection_dim", n_text)
    w.add_uint32("clip.vision.attention.head_count", HEADS)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.add_uint32("clip.vision.block_count", BLOCKS)
    # CLIP (OpenAI) normalisation constants, as in real llava-1.5 mmproj files
    w.add_array("clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073])
    w.add_array("clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711])
    made = tensors(gen, n_text, seed)
    for name, data in made.items():
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return len(made)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text-model", help="text model GGUF to match (its hidden size is read)")
    ap.add_argument("--arch", help="the text model's architecture (with --n-embd)")
    ap.add_argument("--n-embd", type=int, help="the text model's hidden size (with --arch)")
    ap.add_argument("--old", action="store_true", help="for the old-generation clip.cpp loader")
    ap.add_argument("--out", required=True, help="output mmproj GGUF path")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.text_model:
        arch, n_text = text_hidden_size(args.text_model)
    elif args.arch and args.n_embd:
        arch, n_text = args.arch, args.n_embd
    else:
        sys.exit("give --text-model, or --arch and --n-embd")
    gen = "old" if args.old else "new"
    count = write(args.out, gen, arch, n_text, args.seed)
    print(f"wrote {args.out}: {gen} loader, {arch} ({n_text} wide), {count} tensors")


if __name__ == "__main__":
    main()
