"""llama.cpp's server and llamafile's classic server: `/props` and raw `/completion`."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pipeline.backends.base import (
    VISION_HINT,
    Completion,
    ContextOverflow,
    DefaultPort,
    NoVision,
    Rejected,
    Request,
    ServerInfo,
    Timed,
    Transient,
    b64,
    tiny_jpeg,
)
from pipeline.backends.chat_formats import guess_format
from pipeline.backends.gbnf import expand_repetitions
from pipeline.backends.http import HttpBackend, stream
from pipeline.backends.http.chat import post_chat, post_chat_timed

if TYPE_CHECKING:
    import httpx

NO_VISION_HINT = (
    "start the server with its vision projector, e.g. llama-server -m MODEL.gguf --mmproj"
    " MMPROJ.gguf (or a LLaVA llamafile)"
)


class LlamaCppBackend(HttpBackend):
    kind = "llama.cpp"
    title = "llama.cpp, llamafile"
    signature = "/props"
    ports = (
        DefaultPort(
            8080,
            "start './model.llamafile --server --nobrowser' (or 'llama-server -m model.gguf')"
            " or pass --backend URL",
            rank=10,
        ),
    )
    vision_hint = VISION_HINT
    penalty_field = "repeat_penalty"

    @classmethod
    def recognises(cls, body: Any) -> bool:
        return True  # any JSON at /props: llama.cpp's servers and their forks (llamafile)

    def probe(self) -> ServerInfo:
        response = self.send("GET", "/props", timeout=10)
        self.raise_for_status(response)
        props = self.json(response)
        settings = props.get("default_generation_settings") or {}
        # The old-generation server (llamafile) names its model only in the settings.
        model = str(
            props.get("model_alias") or props.get("model_path") or settings.get("model") or ""
        )
        total_slots = props.get("total_slots")
        modalities = props.get("modalities")
        marker = str(props.get("media_marker") or "")
        old_generation = modalities is None
        if old_generation:
            # llamafile's classic server (and llama.cpp before 2024): no `modalities`; LLaVA
            # llamafiles take `image_data`. Whether images are really seen is checked later.
            vision, api = True, "image_data"
        else:
            vision = bool(modalities.get("vision"))
            api = ("multimodal" if marker else "chat") if vision else ""
        self.info = ServerInfo(
            kind=self.kind,
            url=self.url,
            model=model.rsplit("/", 1)[-1],
            slots=int(total_slots) if isinstance(total_slots, int) and total_slots > 0 else 1,
            n_ctx=settings.get("n_ctx") or props.get("n_ctx"),
            chat_format=guess_format(model, str(props.get("chat_template") or "")),
            abilities=frozenset(
                {"text", "tokenize", "grammar"} | ({"vision"} if vision else set())
            ),
            version=str(props.get("build_info") or ""),
            vision_api=api,
            media_marker=marker,
            grammar_repetition=not old_generation,
        )
        return self.info

    def complete(self, request: Request) -> Completion:
        if request.images and self.info.vision_api == "chat":
            return post_chat(self, request)
        response = self.send("POST", "/completion", self._payload(request))
        self._check(response, request)
        body = self.json(response)
        if not isinstance(body, dict) or not isinstance(body.get("content"), str):
            raise Transient(f"{self.url}/completion answered without a 'content' string")
        return _completion(body, body["content"])

    def complete_timed(self, request: Request) -> Timed:
        """The same request streamed, without the prompt cache (a bench must pay for the
        whole prompt): the first piece's time, and the server's own `timings` from the last
        event (both server generations name them alike)."""
        if request.images and self.info.vision_api == "chat":
            return post_chat_timed(self, request)
        payload = {**self._payload(request), "stream": True, "cache_prompt": False}
        where = f"{self.url}/completion"
        pieces: list[str] = []
        first: float | None = None
        for at, event in stream.events(self, "/completion", payload, self._checker(request)):
            body = stream.data(event, where)
            if not isinstance(body, dict) or not isinstance(body.get("content", ""), str):
                raise Transient(f"{where} streamed an event without a 'content' string")
            piece = body.get("content") or ""
            pieces.append(piece)
            if first is None and (piece or body.get("stop")):
                first = at  # the first text; with none at all, the end
            if body.get("stop") is True:
                timings = body.get("timings")
                return Timed(
                    _completion(body, "".join(pieces)),
                    at,
                    first,
                    stream.llama_timings(timings) if isinstance(timings, dict) else None,
                )
        raise stream.ended(where)

    def _payload(self, request: Request) -> dict[str, object]:
        """`/completion`'s body: the text in the chat format, images as this server takes
        them, stops, grammar."""
        api = self.info.vision_api
        if request.images and api not in ("multimodal", "image_data"):
            raise NoVision(f"{self.url} has no vision projector loaded; {NO_VISION_HINT}")
        prompt: object
        if request.images and api == "multimodal":
            # The marker is random per server start (read from /props); one per image.
            marker = self.info.media_marker
            user = "".join(f"{marker}\n" for _ in request.images) + request.prompt
            text, stop = self.raw_prompt(replace(request, prompt=user))
            prompt = {"prompt_string": text, "multimodal_data": [b64(i) for i in request.images]}
        elif request.images:
            user = "".join(f"[img-{10 + n}]" for n in range(len(request.images)))
            prompt, stop = self.raw_prompt(replace(request, prompt=f"{user}\n{request.prompt}"))
        else:
            prompt, stop = self.raw_prompt(request)
        payload: dict[str, object] = {
            "prompt": prompt,
            "n_predict": request.max_tokens,
            "temperature": request.temperature,
            "stop": stop,
            "cache_prompt": True,
        }
        if request.grammar:
            payload["grammar"] = request.grammar
            if not self.info.grammar_repetition:
                # This generation cannot parse `x{2,5}`, and then crashes outright.
                payload["grammar"] = expand_repetitions(request.grammar)
        if request.repeat_penalty != 1.0:
            payload["repeat_penalty"] = request.repeat_penalty
        if request.images and api == "image_data":
            payload["image_data"] = [
                {"data": b64(image), "id": 10 + n} for n, image in enumerate(request.images)
            ]
        return payload

    def _check(self, response: httpx.Response, request: Request) -> None:
        """An error answer as the right BackendError (the stream's are plain JSON too)."""
        if response.status_code == 404 and request.images:
            # The old server's answer to an image it cannot decode (text/plain, captures 15-17).
            raise Rejected(f"{self.url} could not read the image (HTTP 404 File Not Found)")
        if response.status_code == 400:
            body = _safe_json(response)
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and error.get("type") == "exceed_context_size_error":
                raise ContextOverflow(
                    str(error.get("message")), error.get("n_prompt_tokens"), error.get("n_ctx")
                )
        self.raise_for_status(response)

    def _checker(self, request: Request) -> stream.Check:
        return lambda response: self._check(response, request)

    def check_vision(self) -> None:
        """Fail before the first photo rather than after a thousand answers about nothing."""
        info = self.info
        if not info.can("vision"):
            raise NoVision(f"{self.url} has no vision projector loaded; {NO_VISION_HINT}")
        if info.vision_api != "image_data":
            return
        # llamafile's server ignores `image_data` unread when started without --mmproj, and
        # before 0.8.2 it counts no prompt tokens for any image request (tokens_evaluated and
        # prompt_n are 0). The one counter that tells is n_past (`tokens_cached`): for the
        # same marker prompt it grows by the image's embeddings only if the image was seen.
        without = self._context_used(None)
        with_image = self._context_used(tiny_jpeg())
        if without is not None and with_image is not None and with_image <= without:
            raise NoVision(
                f"{self.url} ignores images (the server's context did not grow by the image);"
                f" {NO_VISION_HINT}"
            )

    def _context_used(self, image: bytes | None) -> int | None:
        """Tokens in the context after a one-token answer to "[img-10] Describe." (with the
        image or not), or None when the server does not report `tokens_cached`."""
        payload: dict[str, object] = {
            "prompt": "[img-10] Describe.",
            "n_predict": 1,
            "temperature": 0,
            "cache_prompt": False,
        }
        if image is not None:
            payload["image_data"] = [{"data": b64(image), "id": 10}]
        response = self.send("POST", "/completion", payload)
        self.raise_for_status(response)
        body = self.json(response)
        cached = body.get("tokens_cached") if isinstance(body, dict) else None
        if not isinstance(cached, int):
            return None
        predicted = body.get("tokens_predicted")
        return cached - (predicted if isinstance(predicted, int) else 1)

    def count_tokens(self, text: str) -> int | None:
        return self.count_with("/tokenize", {"content": text}, lambda b: len(b["tokens"]))


def _completion(body: dict[str, Any], text: str) -> Completion:
    """A Completion from `/completion`'s answer (or its stream's last event) and the text."""
    timings = body.get("timings")
    timings = timings if isinstance(timings, dict) else {}
    return Completion(
        text=text,
        prompt_tokens=body.get("tokens_evaluated", timings.get("prompt_n")),
        completion_tokens=body.get("tokens_predicted", timings.get("predicted_n")),
        stop_reason=_stop_reason(body),
        timings=timings,
    )


def _stop_reason(body: dict[str, object]) -> str | None:
    """New builds say `stop_type`; llamafile and older builds use three booleans."""
    stop_type = body.get("stop_type")
    if isinstance(stop_type, str) and stop_type:
        return {"none": None}.get(stop_type, stop_type)
    for flag, reason in (
        ("stopped_eos", "eos"),
        ("stopped_word", "word"),
        ("stopped_limit", "limit"),
    ):
        if body.get(flag):
            return reason
    return None


def _safe_json(response: object) -> object:
    try:
        return response.json()  # type: ignore[attr-defined]
    except ValueError:
        return None
