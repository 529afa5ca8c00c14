"""What pipe asks of a model (base.py), the kinds of server that answer (one module each,
listed in registry.py), HTTP apart from the interface (http/), and backends made of others
(pool.py, lazy.py)."""

from __future__ import annotations

from pipeline.backends.base import (
    Backend,
    BackendError,
    Busy,
    Completion,
    ContextOverflow,
    DefaultPort,
    DrawRequest,
    NoVision,
    Rejected,
    Request,
    ServerInfo,
    ServerTimings,
    Timed,
    Transient,
    Unreachable,
    Unsuitable,
)
from pipeline.backends.llamafile_cli import LlamafileCli
from pipeline.backends.registry import (
    REGISTRY,
    Unrecognised,
    connect,
    default_urls,
    detect,
    normalize_url,
)

__all__ = [
    "Backend",
    "BackendError",
    "Busy",
    "Completion",
    "ContextOverflow",
    "DefaultPort",
    "DrawRequest",
    "LlamafileCli",
    "NoVision",
    "REGISTRY",
    "Rejected",
    "Request",
    "ServerInfo",
    "ServerTimings",
    "Timed",
    "Transient",
    "Unreachable",
    "Unrecognised",
    "Unsuitable",
    "connect",
    "default_urls",
    "detect",
    "normalize_url",
]
