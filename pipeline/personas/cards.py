"""Character cards in every form SillyTavern reads and writes: a PNG with a `chara` text
chunk (base64 JSON: V1 fields at the top, or V2 `{"spec": "chara_card_v2", "data": {...}}`)
and/or a `ccv3` chunk (V3, which wins when present, as in SillyTavern), or plain JSON (V1,
V2, V3). A card comes from the internet: sizes are bounded and every problem is one
`BadCard` line naming the file."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.personas.persona import BadCard
from pipeline.personas.png_text import MAX_FILE, PngTextError, text_chunks

MAX_JSON = 16 << 20  # a card's JSON (a lorebook inside can be large; we read none of it)
MAX_FIELD = 100_000  # characters in one field: long cards are ~20,000
FIELDS = (
    "name",
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
    "system_prompt",
    "post_history_instructions",
)
V1_FIELDS = FIELDS[:6]  # V1 has no system_prompt nor post_history_instructions
SPECS = {"chara_card_v2": "v2", "chara_card_v3": "v3"}


@dataclass(frozen=True)
class Card:
    name: str
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    system_prompt: str = ""  # V2/V3 only
    post_history_instructions: str = ""  # V2/V3 only
    spec: str = "v1"  # "v1", "v2" or "v3"
    source: str = ""  # the file it was read from
    portrait_prompt: str = ""  # data.extensions.pipe.portrait, if the card has one

    @property
    def portrait(self) -> str:
        """A Stable Diffusion prompt for the character's portrait: the card's own, else one
        made from its name and the first sentence of its description."""
        if self.portrait_prompt:
            return self.portrait_prompt
        first = self.description.strip().split("\n", 1)[0].split(". ", 1)[0].strip()
        first = first.replace("{{char}}", self.name).replace("{{user}}", "someone")
        return ", ".join(p for p in (f"portrait of {self.name}", first[:200], "soft light") if p)


def read_bounded(path: Path, limit: int, what: str, expected: str) -> bytes:
    """At most `limit` bytes of `path`; a longer or unreadable file is one BadCard line."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise BadCard(f"{path}: cannot read {what}: {e.strerror or e}") from None
    if len(data) > limit:
        raise BadCard(f"{path}: over {limit >> 20} MB; {expected}")
    return data


def read_card(path: Path | str) -> Card:
    """The card in a `.png` or `.json` file (judged by content, not by the name)."""
    path = Path(path)
    data = read_bounded(path, MAX_FILE, "the card", "a card is a picture of a few MB")
    if data.startswith(b"\x89PNG"):
        text = _from_png(path, data)
    else:
        if len(data) > MAX_JSON:
            raise BadCard(f"{path}: over {MAX_JSON >> 20} MB of JSON; a card is a few KB")
        text = _utf8(path, data)
    return parse_card(text, str(path))


def _from_png(path: Path, data: bytes) -> str:
    try:
        chunks = text_chunks(data)
    except PngTextError as e:
        raise BadCard(f"{path}: not a readable PNG card: {e}") from None
    # SillyTavern matches the keywords without case and prefers ccv3 to chara.
    lowered: dict[str, str] = {}
    for keyword, text in chunks.items():
        lowered.setdefault(keyword.lower(), text)
    for keyword in ("ccv3", "chara"):
        if keyword in lowered:
            return _base64(path, keyword, lowered[keyword])
    raise BadCard(f"{path}: a PNG without a character card in it (no 'chara' or 'ccv3' chunk)")


def _base64(path: Path, keyword: str, text: str) -> str:
    if len(text) > MAX_JSON * 4 // 3 + 4:
        raise BadCard(f"{path}: the '{keyword}' chunk is over {MAX_JSON >> 20} MB")
    try:
        # Node's Buffer.from(text, "base64") skips what is not base64; so does this.
        raw = base64.b64decode("".join(text.split()), validate=False)
    except (binascii.Error, ValueError):
        raise BadCard(f"{path}: the '{keyword}' chunk is not valid base64") from None
    return _utf8(path, raw)


def _utf8(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadCard(f"{path}: the card is not UTF-8 text (byte {e.start})") from None


def parse_card(text: str, source: str) -> Card:
    """A card from its JSON text; `source` names it in errors."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadCard(f"{source}: the card's JSON is nested too deep") from None
    except ValueError as e:
        raise BadCard(f"{source}: the card is not valid JSON: {_line(str(e))}") from None
    if not isinstance(value, dict):
        raise BadCard(f"{source}: not a character card (the JSON is not an object)")
    spec_value = value.get("spec")
    if spec_value is None:
        fields, spec = {k: value.get(k) for k in V1_FIELDS}, "v1"
    elif spec_value in SPECS:
        fields, spec = _v2_fields(value, source), SPECS[spec_value]
    else:
        raise BadCard(f"{source}: not a character card (unknown spec {_short(spec_value)})")
    return Card(
        **_fields(fields, source),
        spec=spec,
        source=source,
        portrait_prompt=_portrait(fields, source),
    )


def _v2_fields(value: dict[str, Any], source: str) -> dict[str, Any]:
    """The `data` object over the V1 fields at the top, as SillyTavern's readFromV2 reads a
    card: a field `data` lacks keeps the top's value, and a card without `data` is read
    from the top alone."""
    data = value.get("data", {})
    if not isinstance(data, dict):
        raise BadCard(f"{source}: the card's 'data' is a JSON {type(data).__name__}, not an object")
    return {**{k: value.get(k) for k in V1_FIELDS if k in value}, **data}


def _fields(fields: dict[str, Any], source: str) -> dict[str, str]:
    if fields.get("name") is None:
        raise BadCard(f"{source}: not a character card (no 'name')")
    out: dict[str, str] = {}
    for key in FIELDS:
        value = fields.get(key)
        out[key] = _text(value, key, source)
    if not out["name"].strip():
        raise BadCard(f"{source}: the card's 'name' is empty")
    if len(out["name"]) > 200 or "\n" in out["name"]:
        raise BadCard(f"{source}: the card's 'name' is not a name (one line, under 200 characters)")
    return out


def _text(value: Any, key: str, source: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        kind = type(value).__name__
        raise BadCard(f"{source}: the card's '{key}' is a JSON {kind}, not text")
    if len(value) > MAX_FIELD:
        raise BadCard(f"{source}: the card's '{key}' is over {MAX_FIELD:,} characters")
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _portrait(fields: dict[str, Any], source: str) -> str:
    extensions = fields.get("extensions")
    pipe = extensions.get("pipe") if isinstance(extensions, dict) else None
    value = pipe.get("portrait") if isinstance(pipe, dict) else None
    if value is None:
        return ""
    text = _text(value, "extensions.pipe.portrait", source).strip()
    if len(text) > 2_000:
        raise BadCard(f"{source}: the card's portrait prompt is over 2,000 characters")
    return text


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _line(text: str) -> str:
    return " ".join(text.split())
