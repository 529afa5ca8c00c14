"""The A1111 image API (`/sdapi/v1/*`), as koboldcpp, AUTOMATIC1111, Forge and SD.Next serve it.

Module functions that take an `HttpBackend`, so any server kind gets pictures by
composition (its own `send`, error classes and URL): `probe_images(backend)` says which SD model is
loaded and which samplers it offers (None when the server cannot draw), `draw(backend,
request)` returns a checked `Picture`.

What koboldcpp 1.76 really does (docs/captures/koboldcpp-sd/ is the authority):
- txt2img and img2img always answer 200 with exactly one image; **failure is an empty
  string** in `images[0]`, with no reason given. An img2img init image that is not RGB
  (RGBA, grey), is under 64 or over 1024 px a side, or is sent as a `data:` URI always ends
  that way: koboldcpp's base64 decoder stops at the `:`. So init images go as bare base64.
- width/height are rounded down to a multiple of 64 (64..1024), steps clamped to 1..80,
  cfg_scale to 1..25: the picture returned may be smaller than asked; its real size is read
  from the PNG.
- a negative seed draws a random one and `info` is "": pipe always sends its own seed.
- one generation at a time, shared with text generation; the 8th concurrent request gets 503.
- on a CPU a picture takes ~1.7 s per step per 64x64 pixels: minutes for 512x512, so every
  request gets a timeout sized to its work (`draw_timeout`).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.answers import Picture
from pipeline.backends.base import Busy, DrawRequest, Rejected, Transient, b64
from pipeline.backends.http.backend import HttpBackend

if TYPE_CHECKING:  # imported where a request is made: a run that asks no server (a
    import httpx  # finished folder) does not load it (~30 ms at every start)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TXT2IMG = "/sdapi/v1/txt2img"
IMG2IMG = "/sdapi/v1/img2img"
NO_IMAGE_MODEL_HINT = (
    "start koboldcpp with --sdmodel MODEL.safetensors (or AUTOMATIC1111/Forge with --api)"
)
INIT_IMAGE_HINT = "an img2img input must be an RGB picture of 64 to 1024 px a side"
EMPTY_HINT = "koboldcpp answers this when it has no --sdmodel or its generation failed"

# The timeout formula (see draw_timeout). Measured on koboldcpp 1.76, CPU, 2 shared cores:
# 64x64 with 1 step 1.7 s, 4 steps 3.7 s, 128x64 3.1 s, 512x512 with 1 step 103-115 s.
SECONDS_PER_STEP_64PX = 1.7  # one sampling step on 64x64 pixels (with the VAE and the PNG)
IMG2IMG_FACTOR = 1.5  # img2img also encodes the init image: 2.3 s against 1.7 s
TIMEOUT_MARGIN = 4.0  # other jobs on the CPU, attention growing faster than pixels past 512
# koboldcpp draws at least 64 px a side, whatever was asked; no picture may be more than
# 4096x4096 (64 MB decoded), whatever a server says it was asked.
MIN_PICTURE_SIDE = 64
MAX_PICTURE_SIDE = 4096
MAX_PICTURE_PIXELS = MAX_PICTURE_SIDE * MAX_PICTURE_SIDE
# What Pillow raises for a file it cannot decode (truncated, corrupt; and a decompression
# bomb, added where Pillow is imported: on the first picture, not at every start).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error)


@dataclass(frozen=True)
class Sampler:
    name: str  # what to send as `sampler_name`, e.g. "Euler a"
    aliases: tuple[str, ...] = ()  # e.g. ("k_euler_a", "k_euler_ancestral")


@dataclass(frozen=True)
class ImageModelInfo:
    """The image side of a server: which SD checkpoint it draws with, and how."""

    model: str  # the loaded checkpoint as the server names it ("random-sd15")
    samplers: tuple[Sampler, ...] = ()
    server: str = "a1111"  # "koboldcpp" or "a1111" (AUTOMATIC1111, Forge, SD.Next)
    version: str = ""

    def sampler(self, wanted: str) -> str | None:
        """The server's name for `wanted` (a name or an alias, any case), or None if it has
        no such sampler. koboldcpp silently draws with Euler a for a name it does not know,
        so a recipe's sampler is checked here, before any picture is drawn."""
        key = wanted.strip().lower()
        for sampler in self.samplers:
            if key in (sampler.name.lower(), *(alias.lower() for alias in sampler.aliases)):
                return sampler.name
        return None


def probe_images(backend: HttpBackend, timeout: float = 10.0) -> ImageModelInfo | None:
    """Which SD model the server at `backend.url` draws with, or None when it cannot draw
    (koboldcpp without --sdmodel, a server without `/sdapi`, an A1111 with no checkpoint).

    Raises Unreachable when nothing answers, Transient/Busy for a server in trouble."""
    server, version = "a1111", ""
    kobold = _get(backend, "/api/extra/version", timeout)
    if isinstance(kobold, dict) and kobold.get("result") == "KoboldCpp":
        server, version = "koboldcpp", str(kobold.get("version", ""))
        if not kobold.get("txt2img"):
            return None
    models = _get(backend, "/sdapi/v1/sd-models", timeout)
    if not isinstance(models, list) or not models:
        return None  # no image API at all, or an image API with nothing to draw with
    options = _get(backend, "/sdapi/v1/options", timeout)
    checkpoint = options.get("sd_model_checkpoint") if isinstance(options, dict) else None
    if checkpoint == "inactive":  # koboldcpp's word for "no --sdmodel"
        return None
    if not checkpoint:
        first = models[0] if isinstance(models[0], dict) else {}
        checkpoint = first.get("title") or first.get("model_name")
    if not checkpoint:
        return None
    listed = _get(backend, "/sdapi/v1/samplers", timeout)
    samplers = tuple(
        Sampler(
            name=str(entry["name"]),
            aliases=tuple(str(a) for a in entry.get("aliases") or () if isinstance(a, str)),
        )
        for entry in (listed if isinstance(listed, list) else [])
        if isinstance(entry, dict) and isinstance(entry.get("name"), str)
    )
    return ImageModelInfo(model=str(checkpoint), samplers=samplers, server=server, version=version)


def draw_timeout(request: DrawRequest, floor: float) -> float:
    """Seconds to wait for one picture: never less than `floor` (the text timeout), and a
    generous multiple of what a CPU needs, so a big picture is never cut off:

        estimate = width x height / 4096 x steps x 1.7 s   (x 1.5 for img2img)
        timeout  = max(floor, 4 x estimate)

    512x512 with 20 steps: 64 x 20 x 1.7 = 2176 s estimated, 2.4 hours allowed. koboldcpp
    sends nothing until the picture is done, so this is the time to the whole answer. Time
    spent queued behind other requests is not counted: send a one-slot server one picture
    at a time.
    """
    pixels = max(request.width, 64) * max(request.height, 64)
    estimate = pixels / 4096 * max(request.steps, 1) * SECONDS_PER_STEP_64PX
    if request.init_image is not None:
        estimate *= IMG2IMG_FACTOR
    return max(floor, TIMEOUT_MARGIN * estimate)


def draw_payload(request: DrawRequest) -> tuple[str, dict[str, Any]]:
    """The endpoint and JSON body for `request`: every setting explicit, the seed too."""
    payload: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "width": request.width,
        "height": request.height,
        "steps": request.steps,
        "cfg_scale": request.cfg_scale,
        "sampler_name": request.sampler,
        "seed": request.seed,
    }
    if request.init_image is None:
        return TXT2IMG, payload
    # Bare base64: with a `data:` prefix koboldcpp answers an empty image.
    payload["init_images"] = [b64(request.init_image)]
    payload["denoising_strength"] = request.denoising_strength
    return IMG2IMG, payload


def draw(backend: HttpBackend, request: DrawRequest, floor: float | None = None) -> Picture:
    """One picture: txt2img, or img2img when `request.init_image` is set.

    Errors: Busy (503, retry later), Transient (an empty image, garbage, a 5xx, no answer
    in time: worth retrying), Rejected (the server refused the request: retrying will not
    help), Unreachable."""
    path, payload = draw_payload(request)
    if floor is None:
        floor = backend.client.timeout.read or 300.0
    return submit(backend, path, payload, seed=request.seed, timeout=draw_timeout(request, floor))


def submit(
    backend: HttpBackend, path: str, payload: Any, *, seed: int, timeout: float | None = None
) -> Picture:
    """POST `payload` to `path` and check the picture that comes back. `draw` builds the
    payload; this is also how tests send what `draw` never would (a data: URI)."""
    # The whole picture may take minutes, but a host that does not answer is known in seconds.
    import httpx

    connect = backend.client.timeout.connect
    limit = httpx.Timeout(timeout, connect=connect) if timeout is not None else None
    response = backend.send("POST", path, payload, timeout=limit)
    where = f"{backend.url}{path}"
    _raise_for_status(backend, response, path)
    body = backend.json(response)
    images = body.get("images") if isinstance(body, dict) else None
    if not isinstance(images, list) or not images or not isinstance(images[0], str):
        raise Transient(f"{where} answered without an image: {_short(body)}")
    text = images[0]
    if not text:
        hint = INIT_IMAGE_HINT if _is_img2img(payload) else EMPTY_HINT
        raise Transient(f"{where} returned an empty image ({hint})")
    png, width, height = _decode_png(where, text, _asked(payload))
    return Picture.of(png, width, height, _info_seed(body, seed))


def _get(backend: HttpBackend, path: str, timeout: float) -> Any:
    """GET a JSON document; None when the server has no such endpoint or answers no JSON."""
    response = backend.send("GET", path, timeout=timeout)
    if response.status_code in (404, 405, 501):
        return None
    _raise_for_status(backend, response, path)
    try:
        return response.json()
    except ValueError:
        return None


def _raise_for_status(backend: HttpBackend, response: httpx.Response, path: str) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = _detail(response)
    if status == 404:
        raise Rejected(f"{backend.url} has no {path} (HTTP 404): {NO_IMAGE_MODEL_HINT}")
    if status == 500 and isinstance(detail, dict) and detail.get("type") == "bad_input":
        # koboldcpp: a body it cannot parse. Sending it again changes nothing.
        raise Rejected(f"{backend.url}{path} rejected the request: {_error_text(response)}")
    if status == 503:
        raise Busy(f"HTTP 503 from {backend.url}{path}: {_error_text(response)}")
    if status >= 500:
        raise Transient(f"HTTP {status} from {backend.url}{path}: {_error_text(response)}")
    raise Rejected(f"HTTP {status} from {backend.url}{path}: {_error_text(response)}")


def _detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("detail") if isinstance(body, dict) else None


def _error_text(response: httpx.Response) -> str:
    """One line from koboldcpp's {"detail": {"msg"}}, A1111's {"error", "errors"} or
    FastAPI's {"detail": [{"loc", "msg"}]}."""
    try:
        body = response.json()
    except ValueError:
        return _one_line(response.text) or response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, dict) and "msg" in detail:
            return _one_line(str(detail["msg"]))
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            first = detail[0]
            where = ".".join(str(part) for part in first.get("loc") or ())
            return _one_line(f"{where}: {first.get('msg', '')}" if where else str(first))
        if isinstance(body.get("error"), str):
            errors = body.get("errors")
            extra = f": {errors}" if isinstance(errors, str) and errors else ""
            return _one_line(f"{body['error']}{extra}")
        if isinstance(detail, str) and detail:
            return _one_line(detail)
    return _short(body)


def _asked(payload: Any) -> tuple[int, int]:
    """The size asked for: the largest a picture may come back (the server may draw less)."""
    sides = [payload.get(key) if isinstance(payload, dict) else None for key in ("width", "height")]
    width, height = (side if isinstance(side, int) else MAX_PICTURE_SIDE for side in sides)
    return max(width, MIN_PICTURE_SIDE), max(height, MIN_PICTURE_SIDE)


def _check_size(where: str, data: bytes, asked: tuple[int, int]) -> None:
    """Refuse from the PNG header, before decoding, a picture bigger than was asked for: a
    746 KB PNG of 16000x16000 decodes to 1 GB. The size is checked by the answer's own
    IHDR, the first chunk of every PNG."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise Transient(f"{where} returned a damaged PNG: no IHDR header")
    width, height = struct.unpack(">II", data[16:24])
    if width > asked[0] or height > asked[1] or width * height > MAX_PICTURE_PIXELS:
        raise Rejected(
            f"{where} returned a picture of {width}x{height}, bigger than the"
            f" {asked[0]}x{asked[1]} asked for: not decoded"
        )


def _decode_png(where: str, text: str, asked: tuple[int, int]) -> tuple[bytes, int, int]:
    """The PNG in a base64 answer, fully decoded once to prove it whole; its size, which
    must not be more than `asked`."""
    if text.startswith("data:"):  # tolerated in answers, though koboldcpp never sends one
        text = text.partition(",")[2]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Transient(
            f"{where} returned an image that is not valid base64 ({len(text)} characters)"
        ) from None
    if not data.startswith(PNG_SIGNATURE):
        kind = _image_kind(data)
        if kind:
            raise Rejected(
                f"{where} returned a {kind} picture, not a PNG: set the server's"
                " samples_format option to png"
            )
        raise Transient(
            f"{where} returned {len(data)} bytes that are not a PNG (they start {data[:8]!r})"
        )
    _check_size(where, data, asked)
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                width, height = im.size
    except (*DECODE_ERRORS, Image.DecompressionBombError) as e:
        raise Transient(f"{where} returned a damaged PNG: {_one_line(e)}") from None
    return data, width, height


def _image_kind(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return ""


def _info_seed(body: dict[str, Any], sent: int) -> int:
    """The seed the server says it drew with (A1111's `info` JSON), else the one sent.
    koboldcpp's `info` is always ""."""
    info = body.get("info")
    if isinstance(info, str) and info.startswith("{"):
        try:
            info = json.loads(info)
        except ValueError:
            return sent
    seed = info.get("seed") if isinstance(info, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else sent


def _is_img2img(payload: Any) -> bool:
    return isinstance(payload, dict) and bool(payload.get("init_images"))


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return _one_line(text)[:120]


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:200]
