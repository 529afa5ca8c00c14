"""The servers on default ports: the first that answers serves a run given no --backend."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from pipeline.backends import (
    Backend,
    BackendError,
    Transient,
    Unreachable,
    connect,
    normalize_url,
)
from pipeline.config import default_backends
from pipeline.errors import BackendUnavailable


def on_default_ports(
    timeout: float, api_key: str | None = None, model_name: str | None = None
) -> Backend | None:
    """The first server answering on a default port. One that answers but cannot serve
    (several models and no --model-name, a wrong key) is said, not passed over for the
    embedded model."""
    for url in default_backends():
        if nothing_listens(url):
            continue
        try:
            return connect(url, wait=0, timeout=timeout, api_key=api_key, model_name=model_name)
        except (Unreachable, Transient):
            continue
        except BackendError as e:
            raise BackendUnavailable(str(e)) from None
    return None


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def nothing_listens(url: str) -> bool:
    """Whether a local port refuses connections, found without an HTTP client: setting one
    up costs ~0.1 s, and a cron run over a finished folder probes every default port for
    nothing. Another host, or a proxy in the environment (the client would use it), is left
    to connect()."""
    if any(name.lower() in _PROXY_VARIABLES for name in os.environ):
        return False
    parts = urlsplit(normalize_url(url))
    if parts.scheme not in ("http", "https") or parts.hostname not in _LOOPBACK:
        return False
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except (OSError, ValueError):  # a bad port, a slow answer: connect() says what it is
        return False
