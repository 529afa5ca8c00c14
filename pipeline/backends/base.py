"""The one small interface every backend implements, and the errors they raise.

A backend turns a `Request` (system text, user text, sampling settings) into a `Completion`.
Backends classify failures so the runner can decide: `Transient` is retried with backoff,
`Unreachable` means the server is down (the run stops, exit 3), `ContextOverflow` means the
text must be cut further, and `Rejected` is a per-item error that retrying cannot fix.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pipeline import server_text
from pipeline.answers import Picture
from pipeline.backends.chat_formats import FORMATS

if TYPE_CHECKING:  # imported where a request is made: a run that asks no server (a
    import httpx  # finished folder) does not load it (~30 ms at every start)


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
class ServerInfo:
    kind: str  # "llama.cpp" | "koboldcpp" | "openai"
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
        # Names a server gives itself (model, version) are stored and shown: valid text only.
        for name, value in vars(self).items():
            if isinstance(value, str):
                object.__setattr__(self, name, server_text.valid(value))

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


class Backend:
    """Shared HTTP plumbing; subclasses implement probe(), complete() and count_tokens().

    Each kind says how it is recognised: `detect()` GETs `signature` and asks
    `recognises(body)` of every registered kind in turn (backends/__init__.py)."""

    kind: ClassVar[str] = "http"
    signature: ClassVar[str] = ""  # the path whose 200 JSON answer identifies this server
    # What the server calls the repetition penalty in an OpenAI-style request (None: it has
    # no such setting, so none is sent).
    penalty_field: str | None = None

    @classmethod
    def recognises(cls, body: Any) -> bool:
        return True

    def __init__(
        self,
        url: str,
        timeout: float = 300.0,
        api_key: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        # The name it goes by in messages and the store; the client keeps any credentials.
        self.url = server_text.redact(url.rstrip("/"))
        self.client = client or make_client(url.rstrip("/"), timeout, api_key)
        self.info: ServerInfo | None = None
        self.model_name: str | None = None  # the model to ask for, where a server has several

    def close(self) -> None:
        self.client.close()

    def probe(self) -> ServerInfo:
        raise NotImplementedError

    def complete(self, request: Request) -> Completion:
        raise NotImplementedError

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
        if not (self.info and self.info.can("vision")):
            raise NoVision(f"{self.url} has no vision model loaded")

    # -- helpers ------------------------------------------------------------------------
    def _count_with(self, path: str, payload: dict[str, Any], read: Any) -> int | None:
        """Ask a tokenizer endpoint; None (so callers estimate) when it cannot answer."""
        try:
            response = self._send("POST", path, payload, timeout=60)
            if response.status_code != 200:
                return None
            count = read(self._json(response))
        except (BackendError, AttributeError, TypeError):
            return None
        return count if isinstance(count, int) else None

    def raw_prompt(self, request: Request) -> tuple[str, list[str]]:
        """For raw-completion APIs: the text wrapped in the chat format, and the stop list."""
        name = request.format
        if name == "auto":
            name = self.info.chat_format if self.info else "chatml"
        fmt = FORMATS[name]
        stop = list(dict.fromkeys([*request.stop, *fmt.stop]))
        return fmt.wrap(request.prompt, request.system), stop

    def _send(
        self,
        method: str,
        path: str,
        payload: Any = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> httpx.Response:
        import httpx

        try:
            kwargs: dict[str, Any] = {"json": payload} if payload is not None else {}
            if timeout is not None:
                kwargs["timeout"] = timeout
            return self.client.request(method, path, **kwargs)
        except httpx.ConnectError as e:
            raise Unreachable(f"cannot connect to {self.url}: {_reason(e)}") from None
        except httpx.TimeoutException:
            raise Transient(f"no answer from {self.url}{path} in time") from None
        except httpx.TransportError as e:
            raise Transient(f"connection to {self.url} dropped: {_reason(e)}") from None

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise Transient(
                f"{self.url} answered HTTP {response.status_code} with something that is not"
                f" JSON: {response.text[:80]!r}"
            ) from None

    def _raise_for_status(self, response: httpx.Response) -> None:
        """Map an HTTP error status to the right error class, with the server's message."""
        status = response.status_code
        if status < 400:
            return
        message = _error_message(response)
        if status == 503:
            raise Busy(f"HTTP 503 from {self.url}: {message}")
        if status >= 500:
            raise Transient(f"HTTP {status} from {self.url}: {message}")
        raise Rejected(f"HTTP {status} from {self.url}: {message}")


def tiny_jpeg() -> bytes:
    """A 32x32 test image for capability probes."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def chat_messages(request: Request) -> list[dict[str, Any]]:
    """OpenAI chat messages; images as data-URI `image_url` parts before the text."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    if request.images:
        parts: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64(image)}"}}
            for image in request.images
        ]
        parts.append({"type": "text", "text": request.prompt})
        messages.append({"role": "user", "content": parts})
    else:
        messages.append({"role": "user", "content": request.prompt})
    return messages


def make_client(url: str, timeout: float = 300.0, api_key: str | None = None) -> httpx.Client:
    """One connection pool per server. Plain-http URLs skip building a TLS context, which
    costs a tenth of a second at every start. The key and the URL's password are secrets
    from here on: server_text hides them wherever a server echoes them."""
    server_text.remember(api_key)
    server_text.remember_url(url)
    import httpx

    from pipeline.backends.bounded import bounded_reply

    # Uncompressed replies only: a body is bounded by the bytes read (MAX_REPLY).
    headers = {"Accept-Encoding": "identity"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return httpx.Client(
        base_url=url,
        timeout=httpx.Timeout(timeout, connect=5.0),
        headers=headers,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        verify=url.startswith("https://"),
        event_hooks={"response": [bounded_reply]},
    )


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text.split("] ")[-1] if "] " in text else text


def _error_message(response: httpx.Response) -> str:
    """Both llama.cpp's {"error":{"message"}} and koboldcpp's {"detail":{"msg"}} shapes."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict):
        for outer, inner in (("error", "message"), ("detail", "msg")):
            value = body.get(outer)
            if isinstance(value, dict) and inner in value:
                return str(value[inner])
            if isinstance(value, str):
                return value
    return json.dumps(body)[:200]
