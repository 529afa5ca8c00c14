"""Fuzz the SSE decoder and the event reading behind `complete_timed` with atheris:

    python tests/backends/fuzz_sse.py -max_total_time=300 [-dict=...] [CORPUS_DIR]

Properties, for any bytes: decoding raises nothing but BadStream; how the bytes are cut
into chunks changes nothing; each event's data is valid text; reading an event's JSON
raises nothing but Transient (one line). tests/backends/test_sse.py checks the same
properties over seeded mutations of the captured streams, deterministically."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from pipeline.backends.base import Transient
    from pipeline.backends.http import stream
    from pipeline.backends.http.sse import BadStream, parse


def outcome(body: bytes, chunk: int) -> object:
    try:
        return parse(body, chunk=chunk)
    except BadStream as e:
        return ("bad", str(e).split(":")[0])


def check(data: bytes) -> None:
    if not data:
        return
    chunk, body = data[0] % 9, data[1:]
    whole = outcome(body, 0)
    assert outcome(body, chunk) == whole, (body, chunk)
    if isinstance(whole, list):
        for event in whole:
            event.data.encode("utf-8")
            try:
                stream.data(event, "http://fuzz")
            except Transient as e:
                assert "\n" not in str(e)


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
