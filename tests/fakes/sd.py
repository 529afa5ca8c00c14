"""A fake koboldcpp 1.76 image server: a real HTTP server on 127.0.0.1 that answers the A1111
endpoints as tests/data/captures/koboldcpp-sd/ (and koboldcpp.py / sdtype_adapter.cpp of
the vendored 1.76 source) show, with real PNGs made by Pillow.

Faithful to koboldcpp:
- HTTP/1.0, its headers; `/api/extra/version` says `txt2img` true only with a model;
  `/sdapi/v1/sd-models` and `/samplers` are `[]` and `sd_model_checkpoint` is "inactive"
  without one; `/api/v1/model` is "inactive" without a text model.
- every draw answers 200 `{"images": [one], "parameters": {}, "info": ""}`; failure is an
  empty string. img2img or txt2img is chosen by `init_images[0]`, not by the path. The init
  image is decoded like koboldcpp does (its base64 decoder stops at the first character
  outside the alphabet, so a `data:` URI decodes to 3 bytes of nothing) and must have exactly
  3 channels and 64..1024 px a side, else the image is "". No model loaded: "" too.
- width/height rounded down to a multiple of 64, then 64..1024 (the long side scaled down);
  steps 1..80; cfg 1..25; unknown samplers are Euler a; non-ASCII dropped from prompts and
  prompts cut at 800 bytes; a negative seed is random. A width, height, steps or seed that
  is not a number makes koboldcpp drop the connection without an answer: so does this.
- a body that is not JSON, or is empty or `{}`: 500 `bad_input` (capture 21).
- one generation at a time (`slots`), up to 6 more wait, the next gets 503 busy.
- the PNG: 8-bit RGB, an empty `parameters` tEXt chunk, blurry coloured noise that depends
  only on what was asked (prompt, seed, size, steps, cfg, sampler, init image, strength).

Knobs: `mode` (every draw) or `failures` (one per draw, in order: the first N draws fail,
then it works): "empty", "bad_input", "not_png", "bad_base64", "damaged_png" (cut in half),
"jpeg" (as an A1111 set to save JPEGs), "busy", "slow" (waits `slow` seconds first), "500"
(an A1111-style internal error), "drop" (closes without answering).
`delay` seconds per picture; `gate`, an Event each picture waits for while holding its slot
(for tests that look at requests in flight); `a1111=True` answers as AUTOMATIC1111 instead
(no koboldcpp endpoints, checkpoint titles with a hash, `info` JSON carrying the seed).

Run one by hand:  python -m tests.fakes.sd --port 5001 --delay 1
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import random
import socket
import string
import threading
import time
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipeline.backends.base import Completion, Request, ServerInfo
from pipeline.backends.http import HttpBackend

MODES = (
    "empty",
    "bad_input",
    "not_png",
    "bad_base64",
    "damaged_png",
    "jpeg",
    "busy",
    "slow",
    "500",
    "drop",
)

HEADERS = [
    ("Server", "ConcedoLlamaForKoboldServer "),
    ("access-control-allow-origin", "*"),
    ("cache-control", "no-store"),
    ("content-type", "application/json"),
]
BAD_INPUT = {"detail": {"msg": "Error parsing input.", "type": "bad_input"}}
BUSY = {"detail": {"msg": "Server is busy; please try again later.", "type": "service_unavailable"}}
A1111_ERROR = {
    "error": "RuntimeError",
    "detail": "",
    "body": "",
    "errors": "Sizes of tensors must match except in dimension 1",
}
NOT_FOUND = (
    b"Error: HTTP Server is running, but this endpoint does not exist. Please check the URL."
)
SAMPLERS = [  # capture 04
    {"name": "Euler a", "aliases": ["k_euler_a", "k_euler_ancestral"], "options": {}},
    {"name": "Euler", "aliases": ["k_euler"], "options": {}},
    {"name": "Heun", "aliases": ["k_heun"], "options": {}},
    {"name": "DPM2", "aliases": ["k_dpm_2"], "options": {}},
    {"name": "DPM++ 2M", "aliases": ["k_dpmpp_2m"], "options": {}},
    {"name": "LCM", "aliases": ["k_lcm"], "options": {}},
]
# sdtype_adapter.cpp: the lower-cased sampler_name -> what it draws with (else Euler a).
SAMPLER_CODES = {
    "euler a": "euler_a",
    "k_euler_a": "euler_a",
    "euler_a": "euler_a",
    "euler": "euler",
    "k_euler": "euler",
    "heun": "heun",
    "k_heun": "heun",
    "dpm2": "dpm2",
    "k_dpm_2": "dpm2",
    "lcm": "lcm",
    "k_lcm": "lcm",
    "dpm++ 2m karras": "dpmpp2m",
    "dpm++ 2m": "dpmpp2m",
    "k_dpmpp_2m": "dpmpp2m",
}
BASE64_ALPHABET = frozenset(string.ascii_letters + string.digits + "+/")
NOT_A_PNG = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"


class _Drop(Exception):
    """koboldcpp raised inside the handler: the client gets no answer at all."""


def kcpp_base64_decode(text: str) -> bytes:
    """koboldcpp's decoder (otherarch/utils.cpp): reads up to the first '=' or character
    outside the alphabet and ignores the rest, so "data:image/png;base64,..." gives 3 bytes."""
    end = 0
    while end < len(text) and text[end] in BASE64_ALPHABET:
        end += 1
    usable = text[: end - end % 4] if end % 4 == 1 else text[:end]
    return base64.b64decode(usable + "=" * (-len(usable) % 4)) if usable else b""


def stb_channels(im: Image.Image) -> int:
    """The channel count stb_image reports for a file (koboldcpp wants exactly 3), or 0 for
    a format stb cannot read (WebP, TIFF, ...)."""
    if im.format == "JPEG":
        return 1 if im.mode == "L" else 3  # stb reports CMYK JPEGs as 3 too
    if im.format == "GIF":
        return 4
    if im.format in ("PNG", "BMP", "PPM", "TGA"):
        if im.mode == "P":  # a palette is expanded; a transparent entry adds alpha
            return 4 if "transparency" in im.info else 3
        return {"1": 1, "L": 1, "I": 1, "I;16": 1, "I;16B": 1, "LA": 2, "RGB": 3}.get(im.mode, 4)
    return 0


def noise_png(key: bytes, width: int, height: int) -> bytes:
    """Blurry coloured noise (one random colour per 8x8 block, like a decoded SD latent),
    the same for the same key, as an RGB PNG with koboldcpp's empty `parameters` text."""
    rng = random.Random(hashlib.sha256(key).digest())
    small = (max(1, width // 8), max(1, height // 8))
    latent = Image.frombytes("RGB", small, rng.randbytes(small[0] * small[1] * 3))
    picture = latent.resize((width, height), Image.Resampling.BILINEAR)
    info = PngInfo()
    info.add_text("parameters", "")
    out = io.BytesIO()
    picture.save(out, "PNG", pnginfo=info, compress_level=1)
    return out.getvalue()


class FakeSd:
    def __init__(
        self,
        *,
        model: str | None = "random-sd15",
        text_model: str | None = None,
        mode: str | None = None,
        failures: Iterable[str] = (),
        delay: float = 0.0,
        slow: float = 3600.0,
        slots: int = 1,
        queue_limit: int = 6,
        a1111: bool = False,
        gate: threading.Event | None = None,
        port: int = 0,
    ) -> None:
        for name in [mode, *failures]:
            if name is not None and name not in MODES:
                raise ValueError(f"unknown mode {name!r}: choose from {', '.join(MODES)}")
        self.model = model
        self.text_model = text_model
        self.mode = mode
        self.failures = list(failures)
        self.delay = delay
        self.slow = slow
        self.slots = slots
        self.queue_limit = queue_limit
        self.a1111 = a1111
        self.gate = gate  # when given, each picture waits (holding its slot) until it is set
        # What happened, for the tests to look at.
        self.calls: Counter[str] = Counter()  # per path
        self.bodies: dict[str, Any] = {}  # the last request body per path
        self.requests: list[tuple[str, Any]] = []  # every request: (path, body)
        self.drawn: list[dict[str, Any]] = []  # the settings each picture was drawn with
        self.in_flight = 0  # draw requests being handled (waiting or drawing)
        self.peak_in_flight = 0
        self.drawing = 0  # draw requests holding a slot
        self.peak_drawing = 0
        self.queued = 0
        self.busy_answers = 0
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(slots)
        self._stopping = threading.Event()
        self._port = port
        self.httpd: ThreadingHTTPServer | None = None

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self.httpd is not None, "start the server first"
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FakeSd:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self.httpd.daemon_threads = True
        # A short poll: stop() waits for it, once per test.
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes "slow" draws
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    def __enter__(self) -> FakeSd:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- routes ---------------------------------------------------------------------------
    def route(self, h: _Handler, method: str, path: str, raw: bytes) -> None:
        if method == "GET":
            self.get(h, path)
        elif path in ("/sdapi/v1/txt2img", "/sdapi/v1/img2img"):
            self.draw_endpoint(h, raw)
        else:
            h.send(404, b"", [("content-type", "text/html")])

    def get(self, h: _Handler, path: str) -> None:
        loaded = self.model is not None
        title = self.checkpoint_title()
        if self.a1111 and path.startswith("/api/"):
            h.send(404, {"detail": "Not Found"}, HEADERS)
        elif path == "/api/extra/version":  # capture 01
            h.send(
                200,
                {
                    "result": "KoboldCpp",
                    "version": "1.76",
                    "protected": False,
                    "txt2img": loaded,
                    "vision": False,
                    "transcribe": False,
                },
                HEADERS,
            )
        elif path == "/api/v1/model":
            name = f"koboldcpp/{self.text_model}" if self.text_model else "inactive"
            h.send(200, {"result": name}, HEADERS)
        elif path == "/api/extra/true_max_context_length":
            h.send(200, {"value": 4096}, HEADERS)
        elif path == "/api/extra/perf":
            h.send(200, {"queue": self.queued, "idle": int(self.drawing == 0)}, HEADERS)
        elif path == "/sdapi/v1/sd-models":  # capture 02
            models = []
            if loaded:
                models = [
                    {
                        "title": title,
                        "model_name": self.model,
                        "hash": "8888888888",
                        "sha256": "8" * 64,
                        "filename": f"MODELS/{self.model}.gguf",
                        "config": None,
                    }
                ]
            h.send(200, models, HEADERS)
        elif path == "/sdapi/v1/options":  # capture 03
            h.send(200, {"samples_format": "png", "sd_model_checkpoint": title}, HEADERS)
        elif path == "/sdapi/v1/samplers":  # capture 04
            h.send(200, SAMPLERS if loaded else [], HEADERS)
        else:
            h.send(404, NOT_FOUND, [("content-type", "text/html")])

    def checkpoint_title(self) -> str:
        if self.model is None:
            return "" if self.a1111 else "inactive"
        return f"{self.model}.safetensors [6ce0161689]" if self.a1111 else self.model

    def draw_endpoint(self, h: _Handler, raw: bytes) -> None:
        failure = self.next_failure()
        if failure == "busy":
            self.answer_busy(h)
            return
        with self._lock:
            waits = self.queued < self.queue_limit  # koboldcpp: 6 wait, the rest try once
            self.queued += waits
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            got = self._slots.acquire(blocking=waits)
            with self._lock:
                self.queued -= waits
            if not got:
                self.answer_busy(h)
                return
            try:
                with self._lock:
                    self.drawing += 1
                    self.peak_drawing = max(self.peak_drawing, self.drawing)
                self.draw_holding_slot(h, raw, failure)
            finally:
                with self._lock:
                    self.drawing -= 1
                self._slots.release()
        finally:
            with self._lock:
                self.in_flight -= 1

    def next_failure(self) -> str | None:
        with self._lock:
            return self.failures.pop(0) if self.failures else self.mode

    def answer_busy(self, h: _Handler) -> None:
        with self._lock:
            self.busy_answers += 1
        h.send(503, BUSY, HEADERS)

    def draw_holding_slot(self, h: _Handler, raw: bytes, failure: str | None) -> None:
        try:
            params = json.loads(raw) if raw else None
        except ValueError:
            params = None
        if not params or failure == "bad_input":  # "not genparams": {} and null too
            h.send(500, BAD_INPUT, HEADERS)
            return
        if failure == "slow":
            self._stopping.wait(self.slow)
        if failure == "drop":
            h.drop()
            return
        if failure == "500":
            h.send(500, A1111_ERROR, HEADERS)
            return
        try:
            image, settings = self.generate(params)
        except _Drop:
            h.drop()
            return
        if self.delay:
            self._stopping.wait(self.delay)
        while self.gate and not self.gate.is_set() and not self._stopping.is_set():
            self.gate.wait(0.05)
        if failure == "empty":
            image = ""
        elif failure == "not_png":
            image = base64.b64encode(NOT_A_PNG).decode()
        elif failure == "bad_base64":
            image = "iVBORw0KGgo!!not*base64"
        elif failure == "damaged_png" and image:
            whole = base64.b64decode(image)
            image = base64.b64encode(whole[: len(whole) // 2]).decode()
        elif failure == "jpeg" and image:  # an A1111 whose samples_format is jpg
            out = io.BytesIO()
            Image.open(io.BytesIO(base64.b64decode(image))).save(out, "JPEG")
            image = base64.b64encode(out.getvalue()).decode()
        info: str = ""
        if self.a1111:
            info = json.dumps({"prompt": settings.get("prompt"), "seed": settings.get("seed")})
        h.send(200, {"images": [image], "parameters": {}, "info": info}, HEADERS)

    def generate(self, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """koboldcpp.py sd_generate + sdtype_generate: the picture, or "" as koboldcpp fails."""
        init_list = params.get("init_images") or []
        init = init_list[0] if init_list and init_list[0] else ""
        width = _kcpp_int(params.get("width", 512))
        height = _kcpp_int(params.get("height", 512))
        steps = _kcpp_int(params.get("steps", 20))
        seed = _kcpp_int(params.get("seed", -1))
        cfg = params.get("cfg_scale", 5)
        if not isinstance(cfg, int | float):
            raise _Drop
        width, height = width - width % 64, height - height % 64
        cfg = 1 if cfg < 1 else (25 if cfg > 25 else cfg)
        steps = 1 if steps < 1 else (80 if steps > 80 else steps)
        width, height = max(width, 64), max(height, 64)
        if max(width, height) > 1024:
            scaler = max(width, height) / 1024
            width, height = int(width / scaler), int(height / scaler)
            width, height = width - width % 64, height - height % 64
        if seed < 0:  # txt2img: srand(time); rand(). img2img: time(NULL)
            seed = int(time.time()) if init else random.randrange(2**31)
        sampler = SAMPLER_CODES.get(str(params.get("sampler_name", "k_euler_a")).lower(), "euler_a")
        settings: dict[str, Any] = {
            "mode": "img2img" if init else "txt2img",
            "prompt": _clean_prompt(params.get("prompt", "high quality")),
            "negative_prompt": _clean_prompt(params.get("negative_prompt", "")),
            "width": width,
            "height": height,
            "steps": steps,
            "cfg_scale": cfg,
            "seed": seed,
            "sampler": sampler,
        }
        if init:
            settings["denoising_strength"] = params.get("denoising_strength", 0.6)
            settings["init_image"] = self.check_init(str(init))
        with self._lock:
            self.drawn.append(settings)
        if self.model is None:
            return "", settings  # "KCPP image generation not initialized!"
        if init and settings["init_image"] is None:
            return "", settings  # "bad input image dimensions" / "load image failed"
        if not (width and height):
            # 64 x 2000 is scaled to 33 x 1024, rounded to 0 x 1024: what sd.cpp then does
            # was not captured; here it fails like every other koboldcpp failure.
            return "", settings
        key = json.dumps(settings, sort_keys=True).encode()
        return base64.b64encode(noise_png(key, width, height)).decode(), settings

    @staticmethod
    def check_init(text: str) -> str | None:
        """The init image's sha256 if koboldcpp would use it, else None."""
        data = kcpp_base64_decode(text)
        try:
            with Image.open(io.BytesIO(data)) as im:
                channels, (w, h) = stb_channels(im), im.size
                im.load()
        except Exception:
            return None
        if channels != 3 or not (64 <= w <= 1024 and 64 <= h <= 1024):
            return None
        return hashlib.sha256(data).hexdigest()


def _kcpp_int(value: Any) -> int:
    """tryparseint(): int(value), or koboldcpp fails on the value later and drops the request."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _Drop from None


def _clean_prompt(value: Any) -> str:
    """clean_input_prompt(): bytes above 0x7F dropped (its `char` is signed), then 800 bytes."""
    raw = str(value).encode("utf-8")
    return bytes(b for b in raw if b <= 0x7F)[:800].decode("ascii")


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeSd
    protocol_version = "HTTP/1.0"  # as koboldcpp
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0].rstrip("/")
        fake = self.server_fake
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        with fake._lock:
            fake.calls[path] += 1
            fake.bodies[path] = body
            fake.requests.append((path, body))
        fake.route(self, method, path, raw)

    def send(self, status: int, payload: Any, headers: list[tuple[str, str]]) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may have given up (a timeout test)
            self.wfile.write(data)

    def drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class SdapiClient(HttpBackend):
    """An HTTP backend of no kind, unprobed: what the sdapi protocol tests send through."""

    def probe(self) -> ServerInfo:
        raise NotImplementedError("a bare client for protocol tests")

    def complete(self, request: Request) -> Completion:
        raise NotImplementedError("a bare client for protocol tests")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per picture")
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--no-model", action="store_true", help="as koboldcpp without --sdmodel")
    args = parser.parse_args()
    server = FakeSd(
        port=args.port,
        delay=args.delay,
        mode=args.mode,
        model=None if args.no_model else "random-sd15",
    ).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()


# Command-line settings that make a drawing as cheap as a fake (or a real server) allows.
SMALL = ("--set", "draw.width=64", "--set", "draw.height=64", "--set", "draw.steps=1")


def draws(sd: FakeSd) -> int:
    """How many pictures `sd` was asked for."""
    return sd.calls["/sdapi/v1/txt2img"] + sd.calls["/sdapi/v1/img2img"]
