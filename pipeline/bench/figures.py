"""What one bench test measured on one backend: a row of the table, a bar of the chart, a
row of the store's `bench` table and an object of `--json`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

BIOTICS = "biotics"  # the librarian explains the antibiotics paragraph in one sentence
SD_YOU = "/sd you"  # the librarian draws its own portrait
TESTS = (BIOTICS, SD_YOU)


@dataclass(frozen=True)
class Figures:
    """One test on one backend. Figures a backend cannot give are None (shown as "–")."""

    test: str  # BIOTICS or SD_YOU
    backend: str  # the URL (no credentials), "embedded", "cli:FILE", "model:FILE"
    kind: str  # ServerInfo.kind: "llama.cpp", "koboldcpp", ...
    model: str
    seconds: float  # biotics: the whole request; /sd you: seconds per picture
    at: str = ""  # when, ISO 8601 UTC
    context_size: int | None = None
    gpu_layers: int | None = None  # where the server or pipe's managed server says
    runs: int = 1  # how many requests the figures are the median of
    # biotics only:
    prompt_tokens: int | None = None  # as the server counted them
    prompt_per_second: float | None = None
    first_token_seconds: float | None = None  # None where the server does not stream
    generated_tokens: int | None = None
    generated_per_second: float | None = None
    overhead_ms: float | None = None  # pipe's time minus the server's own, per request
    # /sd you only:
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # what else shaped the figures

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figures:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
