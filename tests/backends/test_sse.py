"""The SSE decoder (pipeline/backends/http/sse.py) on the captured streams, and on seeded
mutations of them: the same properties tests/backends/fuzz_sse.py fuzzes, checked here
deterministically."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pipeline.backends.base import Transient
from pipeline.backends.http import stream
from pipeline.backends.http.sse import BadStream, Event, SSEDecoder, parse

# Copies of ../shared/docs/captures' streamed answers (folder--file), headers and body.
CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures" / "streams"
STREAMS = {
    "llama-server": "llama-server--21-completion-stream",
    "old-server": "llama-server-old--20-completion-stream-text-mm",
    "old-server-error": "llama-server-old--22-completion-stream-image-unknown-id-mm",
    "koboldcpp": "koboldcpp--26-generate-stream-sse",
    "chat": "llama-server--31-v1-chat-stream",
}


def body(name: str) -> bytes:
    raw = (CAPTURES / f"{STREAMS[name]}.response.txt").read_bytes()
    return raw.split(b"\n\n", 1)[1]


def test_the_captured_streams_decode_as_their_servers_meant() -> None:
    llama = parse(body("llama-server"))
    assert len(llama) == 9 and all(e.name == "message" for e in llama)
    assert '"stop":true' in llama[-1].data and '"timings"' in llama[-1].data
    assert len(parse(body("old-server"))) == 9
    assert parse(body("old-server-error")) == [Event("error", '{"content":"internal_error"}')]
    kobold = parse(body("koboldcpp"))
    assert [e.name for e in kobold] == ["message"] * 3 and '"length"' in kobold[-1].data
    assert parse(body("chat"))[-1] == Event("message", "[DONE]")


def test_line_ends_comments_fields_and_chunks() -> None:
    raw = b": a comment\r\nevent: message\rdata: one\r\ndata:two\n\ndata: three\r\n\r\n"
    expected = [Event("message", "one\ntwo"), Event("message", "three")]
    for size in (0, 1, 2, 3, 5):
        assert parse(raw, chunk=size) == expected
    assert parse(b"data: last, with no blank line after") == [
        Event("message", "last, with no blank line after")
    ]
    assert parse(b"id: 7\nretry: 10\n\n") == []  # no data: no event


def test_what_is_not_an_event_stream_is_bad_stream() -> None:
    with pytest.raises(BadStream, match="UTF-8"):
        parse(b'data: {"content": "\xff"}\n\n')
    decoder = SSEDecoder(max_line=1000)
    decoder.feed(b"data: " + b"x" * 900)
    with pytest.raises(BadStream, match="a line of more than"):
        decoder.feed(b"x" * 200)


def test_a_long_line_in_small_chunks_is_read_in_linear_time() -> None:
    decoder = SSEDecoder()
    for _ in range(20000):
        assert decoder.feed(b"x" * 50) == []
    assert decoder.feed(b"\n\n") == []  # "xxx…" is a field with no colon: ignored


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op == 1:
            out[at:at] = rng.choice([b"\r", b"\n", b"\r\n", b":", b"data: ", b"\xff", b"\xc3"])
        elif op == 2:
            del out[at : at + rng.randint(1, 40)]
        elif op == 3:
            out = out[:at]
        elif op == 4:
            start = rng.randrange(len(out) + 1)
            out[at:at] = out[start : start + rng.randint(1, 200)]
        else:
            out[at:at] = rng.choice([b'data: {"error": "a\\nb"}\n\n', b"data: [[[[\n\n", b"error:"])
    return bytes(out)


def outcome(data: bytes, chunk: int) -> object:
    try:
        return parse(data, chunk=chunk)
    except BadStream:
        return "bad"


@pytest.mark.parametrize("name", list(STREAMS))
def test_mutated_streams_decode_alike_in_any_chunks_and_fail_only_as_one_line(name: str) -> None:
    rng = random.Random(f"sse-{name}")
    original = body(name)
    for _ in range(300):
        data = mutate(original, rng)
        whole = outcome(data, 0)
        for chunk in (1, 2, 7, 64):
            assert outcome(data, chunk) == whole
        for event in whole if isinstance(whole, list) else []:
            try:
                stream.data(event, "http://127.0.0.1:1/completion")
            except Transient as e:
                assert "\n" not in str(e)


def test_json_nested_too_deep_is_a_transient_line() -> None:
    with pytest.raises(Transient, match="not JSON"):
        stream.data(Event("message", "[" * 100000), "http://127.0.0.1:1/completion")
