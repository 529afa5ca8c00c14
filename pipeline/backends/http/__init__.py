"""HTTP apart from the backend interface (as httpx's transports are apart from
BaseTransport): `HttpBackend`, the base of every server kind, and the protocols several
kinds speak, each a module of functions that take an HttpBackend: `chat` (OpenAI's
`/v1/chat/completions`) and `sdapi` (A1111's image API). `bounded` keeps replies in bounds."""

from pipeline.backends.http.backend import HttpBackend, make_client, open_http

__all__ = ["HttpBackend", "make_client", "open_http"]
