"""The embedded model server: the subset of llama.cpp's server API that pipe uses
(`/health`, `/props`, `/tokenize`, `/completion`), over cyllama's prebuilt llama.cpp bindings.

pipe starts it (`python -m pipeline.servers.embedded.server --model FILE`) when no server is
running, talks to it with the same llama.cpp backend code as any other server, and stops it at the
end. cyllama's own server is not used: in 0.2.18 it answers only the first request (its slot
reset does not clear the KV cache), speaks only OpenAI chat, and its C server binds 0.0.0.0.

It listens on 127.0.0.1 only, and prints `listening on PORT` once the model is loaded.
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPEAT_LAST_N = 64  # llama.cpp server's default window for repeat_penalty


class Model:
    """One context (one slot): requests take turns, as on a llama-server with -np 1."""

    def __init__(self, path: str, n_ctx: int, threads: int) -> None:
        from cyllama.llama import llama_cpp as L

        L.disable_logging()
        self.L = L
        self.path = path
        self.model = L.LlamaModel(path_model=path)
        self.vocab = self.model.get_vocab()
        params = L.LlamaContextParams()
        params.n_ctx = n_ctx
        params.n_batch = n_ctx
        self.context = L.LlamaContext(self.model, params, verbose=False)
        self.context.set_n_threads(threads, threads)
        self.n_ctx = n_ctx
        self.lock = threading.Lock()

    def tokenize(self, text: str, special: bool) -> list[int]:
        return list(self.vocab.tokenize(text, add_special=special, parse_special=special))

    def complete(
        self,
        prompt: str,
        n_predict: int,
        temperature: float,
        stop: list[str],
        grammar: str,
        repeat_penalty: float = 1.0,
        send: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """The answer; with `send`, each piece of it is also sent as it is generated."""
        tokens = self.tokenize(prompt, special=True)
        if n_predict < 0:
            n_predict = self.n_ctx
        if len(tokens) >= self.n_ctx:
            raise ContextExceeded(len(tokens), self.n_ctx)
        with self.lock:
            started = time.perf_counter()
            self.context.kv_cache_clear()
            sampler = self._sampler(temperature, grammar, repeat_penalty)
            if self.context.decode(self.L.llama_batch_get_one(tokens, 0)) != 0:
                raise RuntimeError("the model could not read the prompt")
            prompt_ms = (time.perf_counter() - started) * 1000
            n_past, stop_type, generated = len(tokens), "limit", 0
            pieces, out = Pieces(self.vocab), Output(stop, send)
            while generated < n_predict and n_past < self.n_ctx - 1:
                # sample() also accepts the token (grammar, penalties): accepting it again
                # would feed the grammar every token twice.
                token = sampler.sample(self.context, -1)
                if self.vocab.is_eog(token):
                    stop_type = "eos"
                    break
                generated += 1
                if out.add(pieces.add(token)):
                    stop_type = "word"
                    break
                if self.context.decode(self.L.llama_batch_get_one([token], n_past)) != 0:
                    break
                n_past += 1
            if stop_type != "word":
                out.add(pieces.end())  # an answer cut inside a character ends in U+FFFD
            out.finish()
            total_ms = (time.perf_counter() - started) * 1000
        return {
            "content": out.text,
            "stop": True,
            "model": os.path.basename(self.path),
            "tokens_predicted": generated,
            "tokens_evaluated": len(tokens),
            "truncated": False,
            "stop_type": stop_type,
            "stopping_word": out.word,
            "id_slot": 0,
            "timings": {
                "prompt_n": len(tokens),
                "prompt_ms": prompt_ms,
                "predicted_n": generated,
                "predicted_ms": total_ms - prompt_ms,
            },
        }

    def _sampler(self, temperature: float, grammar: str, repeat_penalty: float) -> Any:
        sampler = self.L.LlamaSampler(self.L.LlamaSamplerChainParams())
        if grammar:
            sampler.add_grammar(self.vocab, grammar, "root")
        if repeat_penalty != 1.0:  # as llama.cpp's server: over the last 64 tokens
            sampler.add_penalties(REPEAT_LAST_N, repeat_penalty, 0.0, 0.0)
        if temperature <= 0:
            sampler.add_greedy()
        else:
            sampler.add_min_p(0.05, 1)
            sampler.add_temp(temperature)
            sampler.add_dist(int.from_bytes(os.urandom(4), "little"))
        return sampler


class Output:
    """The answer as it grows, cut at the first stop string. With `send` (streaming) it goes
    out a piece at a time, holding back what may be the start of a stop string, as
    llama.cpp's server does, so no client ever sees a stop string."""

    def __init__(self, stop: list[str], send: Callable[[str], None] | None) -> None:
        self.stop = [s for s in stop if s]
        self.send = send
        self.text = ""
        self.word = ""
        self.sent = 0

    def add(self, piece: str) -> bool:
        """Add a piece; True when a stop string ended the answer."""
        self.text += piece
        hit = next((s for s in self.stop if s in self.text), None)
        if hit:
            self.text, self.word = self.text[: self.text.index(hit)], hit
            self._send(len(self.text))
            return True
        ends = (k for s in self.stop for k in range(1, len(s)) if self.text.endswith(s[:k]))
        self._send(len(self.text) - max(ends, default=0))
        return False

    def finish(self) -> None:
        self._send(len(self.text))

    def _send(self, upto: int) -> None:
        if self.send is not None and upto > self.sent:
            self.send(self.text[self.sent : upto])
            self.sent = upto


class Pieces:
    """Tokens to text as llama.cpp's server does it: each token's bytes go through one
    incremental UTF-8 decoder, so a character split across tokens comes out whole.

    cyllama's `token_to_piece` decodes each token alone (a split character becomes U+FFFD),
    so a piece that holds U+FFFD is read back as bytes from the token's vocabulary text."""

    def __init__(self, vocab: Any) -> None:
        self.vocab = vocab
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def add(self, token: int) -> str:
        return self.decoder.decode(self.bytes_of(token))

    def end(self) -> str:
        return self.decoder.decode(b"", final=True)

    def bytes_of(self, token: int) -> bytes:
        piece = self.vocab.token_to_piece(token, 0, False)
        if "\ufffd" not in piece:
            return piece.encode("utf-8", "surrogatepass")
        raw = self.vocab.get_text(token)
        if self.vocab.vocab_type == VOCAB_BPE and all(c in GPT2_BYTES for c in raw):
            return bytes(GPT2_BYTES[c] for c in raw)
        if self.vocab.vocab_type in (VOCAB_SPM, VOCAB_UGM):
            byte = SPM_BYTE.fullmatch(raw)
            if byte:
                return bytes([int(byte.group(1), 16)])
        return piece.encode("utf-8", "surrogatepass")


def _gpt2_bytes() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet (llama.cpp's unicode_utf8_to_byte): the character
    each byte is written as in a BPE vocabulary, inverted."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars = {b: chr(b) for b in printable}
    shifted = (b for b in range(256) if b not in chars)
    chars.update({b: chr(256 + n) for n, b in enumerate(shifted)})
    return {c: b for b, c in chars.items()}


VOCAB_SPM, VOCAB_BPE, VOCAB_UGM = 1, 2, 4  # llama.cpp's llama_vocab_type
GPT2_BYTES = _gpt2_bytes()
SPM_BYTE = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # SentencePiece's byte-fallback tokens


class ContextExceeded(Exception):
    def __init__(self, n_prompt: int, n_ctx: int) -> None:
        super().__init__(
            f"request ({n_prompt} tokens) exceeds the available context size ({n_ctx} tokens)"
        )
        self.n_prompt = n_prompt
        self.n_ctx = n_ctx


class Handler(BaseHTTPRequestHandler):
    """llama.cpp's server API, the part pipe uses, over `model` (set by make_handler)."""

    model: Model
    protocol_version = "HTTP/1.1"
    server_version = "pipe-embedded"
    wbufsize = 1 << 16

    def log_message(self, *_: Any) -> None:
        pass

    def answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status: int, message: str, kind: str, **extra: Any) -> None:
        self.answer(status, {"error": {"code": status, "message": message, "type": kind, **extra}})

    def do_GET(self) -> None:
        if self.path == "/health":
            self.answer(200, {"status": "ok"})
        elif self.path == "/props":
            self.answer(200, _props(self.model))
        else:
            self.error(404, "File Not Found", "not_found_error")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as e:
            self.error(500, f"bad JSON: {e}", "server_error")
            return
        if self.path == "/tokenize":
            self.answer(200, {"tokens": self.model.tokenize(str(body.get("content", "")), False)})
        elif self.path == "/completion":
            self.completion(body)
        else:
            self.error(404, "File Not Found", "not_found_error")

    def completion(self, body: dict[str, Any]) -> None:
        if not isinstance(body.get("prompt"), str):
            self.error(400, "key 'prompt' not found", "invalid_request_error")
            return
        events = Events(self) if body.get("stream") else None
        try:
            result = self.model.complete(
                body["prompt"],
                int(body.get("n_predict", -1)),
                float(body.get("temperature", 0.8)),
                [str(s) for s in body.get("stop") or []],
                str(body.get("grammar") or ""),
                float(body.get("repeat_penalty", 1.0)),
                events.piece if events else None,
            )
        except OSError:  # the client left mid-stream: the generation stopped with it
            self.close_connection = True
            return
        except Exception as e:
            if events is None or not events.started:
                self.failed(e)
            else:  # mid-stream, as llama.cpp's server says it: an error event, then the end
                events.last({"error": {"code": 500, "message": str(e), "type": "server_error"}})
            return
        if events is not None:  # the pieces went out already; the last event has the rest
            events.last({**result, "content": ""})
            return
        self.answer(200, result)

    def failed(self, e: Exception) -> None:
        """An error before any answer: the status and body llama.cpp's server gives."""
        if isinstance(e, ContextExceeded):
            self.error(
                400,
                str(e),
                "exceed_context_size_error",
                n_prompt_tokens=e.n_prompt,
                n_ctx=e.n_ctx,
            )
        else:  # the model failed; the client retries or records it
            self.error(500, str(e), "server_error")


class Events:
    """`"stream": true`: Server-Sent Events as llama.cpp's server sends them, chunked, a
    `data: {json}` line per piece and a last one with `stop: true` and the timings. The
    headers go with the first piece, so an error before it is still a plain JSON answer."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.started = False
        self.count = 0

    def piece(self, text: str) -> None:
        self.count += 1
        self._write({"content": text, "stop": False, "id_slot": -1, "tokens_predicted": self.count})

    def last(self, body: dict[str, Any]) -> None:
        try:
            self._write({**body, "stop": True})
            self.handler.wfile.write(b"0\r\n\r\n")
            self.handler.wfile.flush()
        except OSError:
            self.handler.close_connection = True

    def _write(self, body: dict[str, Any]) -> None:
        h = self.handler
        if not self.started:
            self.started = True
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
        data = f"data: {json.dumps(body)}\n\n".encode()
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        h.wfile.flush()


def _props(model: Model) -> dict[str, Any]:
    return {
        "default_generation_settings": {"n_ctx": model.n_ctx},
        "total_slots": 1,
        "model_path": model.path,
        "model_alias": os.path.basename(model.path),
        "modalities": {"vision": False},
        "chat_template": "",
        "build_info": "pipe-embedded (cyllama)",
    }


def make_handler(model: Model) -> type[BaseHTTPRequestHandler]:
    """A request handler class serving `model`."""
    return type("Handler", (Handler,), {"model": model})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    model = Model(args.model, args.ctx, args.threads)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(model))
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
