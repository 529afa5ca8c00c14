"""The one small interface every backend implements, and the errors they raise.

A backend turns a `Request` (system text, user text, sampling settings) into a `Completion`.
Backends classify failures so the runner can decide: `Transient` is retried with backoff,
`Unreachable` means the server is down (the run stops, exit 3), `ContextOverflow` means the
text must be cut further, and `Rejected` is a per-item error that retrying cannot fix.
"""

from __future__ import annotations

import base64
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipeline import server_text
from pipeline.answers import Picture
from pipeline.backends.chat_formats import FORMATS


@dataclass(frozen=True)
class Request:
    prompt: str
    system: str = ""
    max_tokens: int = 256
    temperature: float = 0.0
    repeat_penalty: float = 1.0  # llama.cpp's repeat_penalty, koboldcpp's rep_pen
    stop: tuple[str, ...] = ()
    grammar: str = ""
    format: str = "auto"
    images: tuple[bytes, ...] = ()  # JPEG bytes, already shrunk for upload


@dataclass(frozen=True)
class DrawRequest:
    """One picture from an A1111-style image API (txt2img, or img2img with `init_image`).
    Sizes, steps and cfg are already within what the server accepts (the recipe checks)."""

    prompt: str
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 20
    cfg_scale: float = 7.0
    sampler: str = "Euler a"
    seed: int = 0  # always a real seed: pipe picks random ones itself, so each is recorded
    init_image: bytes | None = None  # img2img: PNG bytes, RGB, 64..1024 px a side
    denoising_strength: float = 0.6


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    stop_reason: str | None = None  # "eos" | "word" | "limit" | None when the server won't say
    timings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerTimings:
    """What the server says its own work took, for one request (llama.cpp's `timings`,
    koboldcpp's `/api/extra/perf`): `pipe bench` compares it with what pipe measured."""

    prompt_tokens: int | None = None  # tokens the server processed for the prompt
    prompt_seconds: float | None = None
    generated_tokens: int | None = None
    generation_seconds: float | None = None

    @property
    def seconds(self) -> float | None:
        """The server's whole time, when it says both parts."""
        if self.prompt_seconds is None or self.generation_seconds is None:
            return None
        return self.prompt_seconds + self.generation_seconds


@dataclass(frozen=True)
class Timed:
    """One request as `pipe bench` measures it: the answer, pipe's clock and the server's."""

    completion: Completion
    seconds: float  # from sending the request to the last byte of the answer
    first_token: float | None = None  # seconds to the first streamed piece; None: not streamed
    server: ServerTimings | None = None  # the server's own account, where it gives one


MAX_NAME_CHARS = 4096  # PATH_MAX: llama.cpp names its model by its path; more is not a name


@dataclass(frozen=True)
class ServerInfo:
    kind: str  # the kind's `kind` ("llama.cpp", "koboldcpp", ...), "pool of N", "embedded model"
    url: str
    model: str
    slots: int = 1
    n_ctx: int | None = None
    chat_format: str = "chatml"
    # What the server can do: "text", "vision", "tokenize", "grammar", "txt2img", "img2img".
    abilities: frozenset[str] = frozenset()
    version: str = ""
    # How images reach this server: "multimodal" (llama.cpp `multimodal_data` + marker),
    # "image_data" (llamafile's `[img-N]`), "chat" (OpenAI `image_url`), "images" (koboldcpp).
    vision_api: str = ""
    media_marker: str = ""
    image_model: str = ""  # the Stable Diffusion checkpoint, for servers that draw
    # GBNF's `x{2,5}` repetition (llama.cpp from mid-2024): llamafile's server crashes on it.
    grammar_repetition: bool = True

    def __post_init__(self) -> None:
        # Names a server gives itself (model, version) are stored, shown and part of every
        # cache key: valid text only, and no longer than a path can be.
        for name, value in vars(self).items():
            if isinstance(value, str):
                object.__setattr__(self, name, server_text.valid(value)[:MAX_NAME_CHARS])

    def can(self, ability: str) -> bool:
        return ability in self.abilities


ABILITIES = ("text", "vision", "tokenize", "grammar", "txt2img", "img2img")


class BackendError(Exception):
    """Base of every backend failure; the message is one line a person can read.

    Its text is often the server's own words, which may echo the API key: every message is
    redacted here, the one place server replies become error text pipe prints and stores."""

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(server_text.redact(str(message)), *args)


class Transient(BackendError):
    """Worth retrying: 5xx, busy, loading, garbage, an empty answer, a dropped connection."""


class Busy(Transient):
    """HTTP 503: the server is busy (koboldcpp's queue is full) or still loading its model."""


class Unreachable(Transient):
    """Nothing answers at the URL (connection refused, no route)."""


class Rejected(BackendError):
    """The server refused this request for good (bad grammar, bad parameters)."""


class Unsuitable(Rejected):
    """The backend cannot run this recipe at all (a model that does not load, no vision):
    no item can succeed, so the run stops (exit 3)."""


class NoVision(Unsuitable):
    """The server cannot see images: its answers would be about nothing."""


class ContextOverflow(Rejected):
    def __init__(self, message: str, prompt_tokens: int | None, n_ctx: int | None) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx


# The doctor's advice for a server that does not see images, where a kind has none better.
VISION_HINT = "start llama-server with --mmproj PROJECTOR.gguf (or use a LLaVA llamafile)"


@dataclass(frozen=True)
class DefaultPort:
    """A port a kind of server listens on unless told otherwise: where pipe looks when no
    server is given, and what the doctor tells a user to start when nothing answers there."""

    number: int
    start_hint: str  # what to start (a whole piece of advice: "start ... or pass ...")
    # Where pipe tries it among every kind's default ports, lowest first: with several
    # servers up, the first that answers is used.
    rank: int


class Backend(ABC):
    """What the engine asks of a model, whatever speaks for it: a server over HTTP
    (HttpBackend, http/), a program run per request (llamafile_cli.py), or several of them
    (pool.py, lazy.py).

    A backend comes from `connect()` (registry.py), which probes it: `info` is set
    from then on, for the backend's whole life. The class attributes describe the kind to
    everything that chooses, detects or advises about servers (the registry, the doctor, the
    CLI's help): a new kind sets them, and nothing else lists kinds."""

    kind: ClassVar[str] = ""  # the name in ServerInfo.kind, the store and messages
    # How messages and the CLI's help name this kind ("llama.cpp, llamafile"); "" for a kind
    # that is never registered (a pool, the lazily opened embedded model).
    title: ClassVar[str] = ""
    signature: ClassVar[str] = ""  # the path whose 200 JSON answer identifies this server
    # Tried after every other kind: its recognises() accepts bodies others' would too.
    fallback: ClassVar[bool] = False
    # `PREFIX:TARGET` picks this kind without detection (`openai:URL`, `cli:FILE`), and
    # `prefix_help` says so in the CLI's --backend help ("openai:URL (OpenAI-compatible...)").
    prefix: ClassVar[str] = ""
    prefix_help: ClassVar[str] = ""
    ports: ClassVar[tuple[DefaultPort, ...]] = ()
    # What the server can be asked for: "text" (an answer), "pictures" (drawn ones). Says
    # which default ports are tried for a text model and which for an image server.
    serves: ClassVar[frozenset[str]] = frozenset({"text"})
    vision_hint: ClassVar[str] = VISION_HINT  # the doctor's advice when it sees no images
    # Whether `info.slots` is the server's own word; if not (OpenAI-compatible servers), a
    # pool gives it its share of -j instead.
    slots_known: ClassVar[bool] = True

    url: str  # the name it goes by in messages and the store: no credentials
    info: ServerInfo  # set by probe(), which connect() calls before handing it out

    @classmethod
    def recognises(cls, body: Any) -> bool:
        """Whether `signature`'s JSON answer `body` says the server is of this kind."""
        return False

    @classmethod
    def normalize(cls, url: str) -> str:
        """`url` as the same server is always named (a key for "already seen")."""
        return url.strip()

    @classmethod
    def open(
        cls,
        target: str,
        *,
        wait: float = 0.0,
        timeout: float = 300.0,
        api_key: str | None = None,
        model_name: str | None = None,
    ) -> Backend:
        """A probed backend of this kind for `target` (what follows `prefix`): how
        connect() opens a kind the user named by its prefix."""
        raise NotImplementedError(f"{cls.__name__} has no prefix to be opened by")

    @abstractmethod
    def probe(self) -> ServerInfo:
        """Find out what the server is and can do; sets and returns `info`."""

    @abstractmethod
    def complete(self, request: Request) -> Completion: ...

    def complete_timed(self, request: Request) -> Timed:
        """`complete()` timed by pipe's clock, for `pipe bench`. Kinds that stream override
        it to time the first piece, and kinds whose server reports its own timings fill
        `server`; the prompt cache is not used, so every request costs what it says."""
        started = time.perf_counter()
        completion = self.complete(request)
        return Timed(completion, time.perf_counter() - started)

    def count_tokens(self, text: str) -> int | None:
        """Tokens in `text` by the server's own tokenizer, or None if it cannot say."""
        return None

    def draw(self, request: DrawRequest) -> Picture:
        """One picture (servers with the txt2img ability); Rejected elsewhere."""
        raise Rejected(f"{self.url} cannot draw pictures")

    def sampler(self, wanted: str) -> str | None:
        """The server's name for a sampler (a name or an alias), None if it has none such."""
        return None

    def check_vision(self) -> None:
        """Before the first image: raise NoVision (with the fix) if images would be ignored."""
        if not self.info.can("vision"):
            raise NoVision(f"{self.url} has no vision model loaded")

    def abort_running(self) -> None:
        """Ctrl-C: stop what runs on the server's side (koboldcpp's generation, a cli:
        process). Most servers stop when the client leaves: nothing to do."""
        return None

    def close(self) -> None:
        """Release connections and processes; the backend is not used after."""
        return None

    def raw_prompt(self, request: Request) -> tuple[str, list[str]]:
        """For raw-completion APIs: the text wrapped in the chat format, and the stop list."""
        name = request.format
        if name == "auto":
            name = self.info.chat_format
        fmt = FORMATS[name]
        stop = list(dict.fromkeys([*request.stop, *fmt.stop]))
        return fmt.wrap(request.prompt, request.system), stop


def tiny_jpeg() -> bytes:
    """A 32x32 test image for capability probes."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
