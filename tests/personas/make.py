"""Cards made in the tests, as SillyTavern and other tools write them: PNGs with text chunks
(Pillow's PngInfo writes tEXt, zTXt and iTXt) and JSON files."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

V1 = {
    "name": "Mira",
    "description": "{{char}} keeps the lighthouse; {{user}} is a visitor.",
    "personality": "calm",
    "scenario": "A stormy night.",
    "first_mes": "Come in out of the rain.",
    "mes_example": "<START>\n{{user}}: Hello?\n{{char}}: Mind the step.",
}


def v2(**fields: Any) -> dict[str, Any]:
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": {**V1, **fields}}


def v3(**fields: Any) -> dict[str, Any]:
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": {**V1, **fields}}


def b64(card: Any) -> str:
    text = card if isinstance(card, str) else json.dumps(card)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def png_bytes(*chunks: tuple[str, str, str]) -> bytes:
    """A small PNG with text chunks: (kind, keyword, text), kind "tEXt", "zTXt" or "iTXt"."""
    info = PngInfo()
    for kind, keyword, text in chunks:
        if kind == "iTXt":
            info.add_itxt(keyword, text, zip=True)
        else:
            info.add_text(keyword, text, zip=kind == "zTXt")
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 90, 60)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def png_card(path: Path, *chunks: tuple[str, str, str]) -> Path:
    path.write_bytes(png_bytes(*chunks))
    return path


def json_card(path: Path, card: Any) -> Path:
    path.write_text(card if isinstance(card, str) else json.dumps(card), encoding="utf-8")
    return path


def st_settings(path: Path, personas: dict[str, str], descriptions: dict[str, Any]) -> Path:
    """A SillyTavern settings.json, shaped as SillyTavern 1.12 writes it (trimmed)."""
    settings = {
        "firstRun": False,
        "username": "User",
        "power_user": {
            "personas": personas,
            "persona_descriptions": descriptions,
            "default_persona": next(iter(personas), None),
            "persona_description": "",
            "persona_description_position": 0,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings), encoding="utf-8")
    return path


def with_good_crcs(data: bytes) -> bytes:
    """The bytes with each chunk's CRC made right, so mutations reach the text decoders
    rather than all stopping at the CRC check."""
    out = bytearray(data)
    at = 8
    while at + 8 <= len(out):
        (length,) = struct.unpack_from(">I", out, at)
        end = at + 8 + length
        if end + 4 > len(out):
            break
        struct.pack_into(">I", out, end, zlib.crc32(out[at + 4 : end]))
        at = end + 4
    return bytes(out)
