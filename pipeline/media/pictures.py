"""Pictures drawn by a Stable Diffusion server, made into files people's SD tools understand.

koboldcpp's A1111-compatible API answers PNGs whose `parameters` text is empty. Here:

- `infotext`: the generation parameters as AUTOMATIC1111 writes them (its `create_infotext`),
  the text that A1111's PNG Info, Civitai, ComfyUI loaders and sd-parsers read back.
- `parse_infotext`: A1111's own reading rules (`parse_generation_parameters`), for checks.
- `with_parameters`: the same PNG with that text in its `parameters` chunk, pixels untouched.
- `init_image_for_img2img`: a photo as koboldcpp's img2img accepts it, and the size to ask for.
"""

from __future__ import annotations

import io
import json
import math
import re
import zlib
from typing import NamedTuple

from PIL import Image

from pipeline.media.formats import StrPath
from pipeline.media.images import prepare_image

# -- infotext -------------------------------------------------------------------------------

# A1111's pattern for one "Key: value" pair of the last line (modules/infotext_utils.py).
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def infotext(
    prompt: str,
    negative_prompt: str,
    steps: int,
    sampler: str,
    cfg_scale: float,
    seed: int,
    width: int,
    height: int,
    model: str | None,
    *,
    denoising_strength: float | None = None,
) -> str:
    """The A1111 "parameters" text of a picture:

        <prompt>
        Negative prompt: <negative prompt>
        Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: sd15

    As A1111 writes it: the "Negative prompt" line only when there is one, keys in A1111's
    order, a value holding a comma, colon or newline JSON-quoted (`quote()`), the whole text
    stripped. Whole numbers print without ".0" (`CFG scale: 7`), as the web UI writes them;
    A1111's API would write "7.0", and readers take both. `model` None or "" leaves the key
    out; `denoising_strength` is for img2img pictures.
    """
    fields: dict[str, object] = {
        "Steps": steps,
        "Sampler": sampler,
        "CFG scale": _number(cfg_scale),
        "Seed": seed,
        "Size": f"{width}x{height}",
        "Model": model or None,
        "Denoising strength": None if denoising_strength is None else _number(denoising_strength),
    }
    params = ", ".join(f"{k}: {_quote(str(v))}" for k, v in fields.items() if v is not None)
    negative = f"\nNegative prompt: {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{params}".strip()


def _number(value: float) -> str:
    """7 -> "7", 7.0 -> "7", 7.5 -> "7.5" (the shortest text that reads back the same)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _quote(value: str) -> str:
    """A1111's `quote()`: JSON-quoted when the value holds a comma, newline or colon.

    Also quoted here, where A1111 would write the value bare and then misread it: a value
    that starts with a double quote (read back as JSON) or with white space (dropped).
    """
    if any(c in value for c in ",\n:") or value.startswith('"') or value != value.lstrip():
        return json.dumps(value, ensure_ascii=False)
    return value


def parse_infotext(text: str) -> dict[str, str]:
    """Read an infotext as A1111's `parse_generation_parameters` does, without its defaults
    and style handling: {"Prompt": ..., "Negative prompt": ..., "Steps": "20", ...}.

    The last line holds the parameters when at least three "Key: value" pairs are found on
    it; every line before is the prompt until one starts with "Negative prompt:". Values
    stay text, as A1111 keeps them ("Size" is "512x512").
    """
    *lines, last = text.strip().split("\n")
    if len(_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] | None = None
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            negative = []
            line = line[len("Negative prompt:") :].strip()
        (prompt if negative is None else negative).append(line)
    found = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative or [])}
    for key, value in _PARAM.findall(last):
        found[key] = _unquote(value)
    return found


def _unquote(value: str) -> str:
    """A1111's `unquote()`: a value in double quotes is JSON, unless it does not parse."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    try:
        return str(json.loads(value))
    except ValueError:
        return value


# -- the parameters chunk -------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_KEYWORD = b"parameters"


def with_parameters(png: bytes, text: str) -> bytes:
    """`png` with its "parameters" text set to `text`, as A1111 stores it.

    Every other chunk and the pixel data stay byte for byte; any "parameters" text chunk
    already there (koboldcpp writes an empty one) is replaced. The new chunk goes where the
    first old one was, or just before the image data when there was none or it came after:
    readers that stop at the pixels (Pillow's `Image.open` among them) still see it.

    Text Latin-1 can hold goes in a tEXt chunk, anything else in an uncompressed UTF-8 iTXt
    chunk: what A1111 writes through Pillow's `PngInfo.add_text`.

    Raises ValueError for bytes that are not a whole PNG, and for text holding a NUL
    character (PNG text cannot carry one).
    """
    if "\0" in text:
        raise ValueError("PNG text cannot hold a NUL character")
    chunks = _chunks(png)
    keep: list[tuple[int, int]] = []  # (start, end) byte ranges of the chunks kept, in order
    insert_at: int | None = None  # index into `keep`
    for kind, start, end in chunks:
        if kind in _TEXT_CHUNKS and png[start + 8 : end - 4].split(b"\0", 1)[0] == _KEYWORD:
            if insert_at is None:  # the first one, and before the image data
                insert_at = len(keep)
            continue
        if kind == b"IDAT" and insert_at is None:
            insert_at = len(keep)
        keep.append((start, end))
    assert insert_at is not None  # the first IDAT always sets it
    new = _text_chunk(text)
    parts = [PNG_SIGNATURE]
    for n, (start, end) in enumerate(keep):
        if n == insert_at:
            parts.append(new)
        parts.append(png[start:end])
    parts.append(png[chunks[-1][2] :])  # whatever follows IEND, as it was
    return b"".join(parts)


def _text_chunk(text: str) -> bytes:
    try:
        return _chunk(b"tEXt", _KEYWORD + b"\0" + text.encode("latin-1"))
    except UnicodeEncodeError:
        # keyword, NUL, compression flag 0, method 0, empty language, NUL, empty
        # translated keyword, NUL, UTF-8 text
        return _chunk(b"iTXt", _KEYWORD + b"\0\0\0\0\0" + text.encode("utf-8"))


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return len(data).to_bytes(4, "big") + kind + data + crc.to_bytes(4, "big")


def _chunks(png: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk, end past its CRC; checks the PNG is whole."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG (no PNG signature)")
    chunks: list[tuple[bytes, int, int]] = []
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 12 > len(png):
            raise ValueError(f"truncated PNG: chunk header cut short at byte {pos}")
        length = int.from_bytes(png[pos : pos + 4], "big")
        kind = png[pos + 4 : pos + 8]
        end = pos + 12 + length
        if length > 0x7FFFFFFF or not kind.isalpha():
            raise ValueError(f"corrupt PNG: bad chunk at byte {pos}")
        if end > len(png):
            raise ValueError(f"truncated PNG: {kind.decode('ascii')} chunk cut short")
        if not chunks and kind != b"IHDR":
            raise ValueError("corrupt PNG: does not start with IHDR")
        chunks.append((kind, pos, end))
        pos = end
        if kind == b"IEND":
            break
    if not any(kind == b"IDAT" for kind, _, _ in chunks):
        raise ValueError("corrupt PNG: no image data (IDAT)")
    return chunks


# -- img2img --------------------------------------------------------------------------------

# What koboldcpp accepts: an init picture of 64..1024 px a side (it answers an empty image
# for anything else), and output sides that are multiples of 64 in the same range (it
# rounds other sizes down).
MIN_SIDE = 64
MAX_SIDE = 1024
SIZE_STEP = 64


class InitImage(NamedTuple):
    png: bytes  # 8-bit RGB PNG, each side MIN_SIDE..MAX_SIDE, upright, alpha on white
    width: int  # the picture size to ask for: same aspect, multiples of 64, 64..1024
    height: int


def init_image_for_img2img(path: StrPath, long_side: int = 512) -> InitImage:
    """A photo as koboldcpp's img2img takes it, with the output size to request.

    The photo is read by `prepare_image` (any format pipe reads, EXIF orientation applied,
    decoded at reduced size under the shared pixel budget, alpha flattened onto white,
    grey, palette and CMYK made RGB), then scaled so its long side is `long_side` (up too,
    so a 16 px icon becomes a usable init picture) and sent as an RGB PNG: koboldcpp's stb
    decoder wants exactly three channels and answers an empty image for an RGBA or grey
    one. A short side under 64 px is stretched to 64, so a panorama wider than 16:1 is
    squeezed rather than cut. (The JPEG step in between costs nothing visible: the model's
    VAE keeps one latent per 8x8 pixels.)

    Raises ImageError (a one-line reason) for a file that is not a readable image.
    """
    if not MIN_SIDE <= long_side <= MAX_SIDE:
        raise ValueError(f"long_side must be {MIN_SIDE}..{MAX_SIDE}, got {long_side}")
    prepared = prepare_image(path, max_side=long_side, quality=95)
    with Image.open(io.BytesIO(prepared.jpeg), formats=["JPEG"]) as decoded:
        im = decoded.convert("RGB")
    size = _init_size(im.width, im.height, long_side)
    if im.size != size:
        im = im.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return InitImage(buf.getvalue(), *output_size(*size))


def _init_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Long side `long_side`, aspect kept, then each side at least MIN_SIDE."""
    scale = long_side / max(width, height)
    return (
        max(MIN_SIDE, round(width * scale)),
        max(MIN_SIDE, round(height * scale)),
    )


def output_size(width: int, height: int) -> tuple[int, int]:
    """The size koboldcpp will really draw for a picture of about width x height: each side
    rounded down to a multiple of 64, within 64..1024, the long side first scaled down to
    1024 keeping the aspect."""
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive, got {width}x{height}")
    scale = min(1.0, MAX_SIDE / max(width, height))

    def step(side: int) -> int:
        return min(MAX_SIDE, max(MIN_SIDE, int(side * scale) // SIZE_STEP * SIZE_STEP))

    return step(width), step(height)
