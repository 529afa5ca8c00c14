"""Replies read within bounds: a server's body is read through a counter that stops at
MAX_REPLY bytes, so a broken or hostile server (an endless body, a small gzip of gigabytes)
costs the request it answered, never pipe's memory."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from pipeline.backends.base import Rejected

# The most of one reply pipe reads: an answer, a model list or a drawn picture (a 1024 px
# PNG, base64) is a few MB; a server sending more is broken or hostile, not slow.
MAX_REPLY = 64 << 20


def bounded_reply(response: httpx.Response) -> None:
    """An httpx response hook, run before the body is read. pipe asks for no encoding; one
    the server applied anyway is left undecoded (so it fails as what it is: not JSON)."""
    response.headers.pop("Content-Encoding", None)
    response.stream = BoundedStream(response.stream, str(response.request.url))


class BoundedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, url: str) -> None:
        self.stream = stream
        self.url = url

    def __iter__(self) -> Iterator[bytes]:
        assert isinstance(self.stream, httpx.SyncByteStream)
        size = 0
        for chunk in self.stream:
            size += len(chunk)
            if size > MAX_REPLY:
                raise Rejected(f"{self.url} sent a reply of more than {MAX_REPLY >> 20} MB")
            yield chunk

    def close(self) -> None:
        self.stream.close()  # type: ignore[union-attr]
