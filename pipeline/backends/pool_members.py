"""The parts of a Pool that are plain data: one member's state, what the pool says it is
(`pooled_info`), and why a server may not join it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pipeline.backends.base import Backend, ServerInfo

SHOWN_URLS = 3  # URLs named in the pool's description; the rest are counted

# A member's model: its text model, or for image servers its image model.
ModelOf = Callable[[ServerInfo], str]


@dataclass(eq=False)
class Member:
    backend: Backend | None  # None until a server that was down at the start answers
    url: str
    slots: int
    index: int
    active: int = 0  # requests in flight on it
    answered: int = 0  # requests it answered (a run's per-backend count)
    failures: int = 0  # failures in a row: sets the next bench's length
    benched: bool = False
    epoch: int = 0  # +1 at each bench: a failure from before the last bench is old news
    version: int = 0  # +1 at each change: older entries in the ready heap are stale
    trouble: Exception | None = None  # why it was benched last
    joining: bool = False  # a joiner thread is connecting to it

    @property
    def load(self) -> float:
        return self.active / self.slots


def pooled_info(
    infos: Sequence[ServerInfo], members: Sequence[Member], url: str, drawing: bool
) -> ServerInfo:
    """What the pool says it is: the first member's info with every member's models, all
    their slots, the smallest context and only the abilities they all have."""
    model_of = model_getter(drawing)
    models = "+".join(sorted({model_of(info) for info in infos}))  # --backend's order: no matter
    first = replace(infos[0], image_model=models) if drawing else infos[0]
    n_ctxs = [info.n_ctx for info in infos if info.n_ctx]
    return replace(
        first,
        kind=f"pool of {len(members)}",
        url=url,
        # Mixed models (allowed): the answers' fingerprint names every model that may
        # have made them, so they never pass for one model's answers.
        model=first.model if drawing else models,
        slots=sum(m.slots for m in members),
        n_ctx=min(n_ctxs) if n_ctxs else None,
        abilities=frozenset.intersection(*(info.abilities for info in infos)),
        grammar_repetition=all(info.grammar_repetition for info in infos),
    )


def model_getter(drawing: bool) -> ModelOf:
    if drawing:
        return lambda info: info.image_model
    return lambda info: info.model


def misfit(pool: ServerInfo, models: Sequence[str], model_of: ModelOf, info: ServerInfo) -> str:
    """Why a late member (`info`) cannot serve what the pool promised the run, or ""."""
    model = model_of(info)
    if model not in models:
        return f"it serves {model or 'an unnamed model'}, the pool {'+'.join(models)}"
    missing = pool.abilities - info.abilities
    if missing:
        return f"it cannot do {', '.join(sorted(missing))}"
    if pool.n_ctx and info.n_ctx and info.n_ctx < pool.n_ctx:
        return f"its context ({info.n_ctx} tokens) is smaller than the pool's"
    return ""


class MixedModels(Exception):
    """The members serve different models and mixing was not allowed."""

    def __init__(self, models: dict[str, str]) -> None:
        self.models = models
        listing = ", ".join(
            f"{url} has {model or 'an unnamed model'}" for url, model in models.items()
        )
        super().__init__(
            f"the --backend servers serve different models ({listing}); give servers of one"
            " model, or --allow-mixed-models to use them together anyway"
        )


def describe(urls: Sequence[str]) -> str:
    shown = ", ".join(urls[:SHOWN_URLS])
    more = len(urls) - SHOWN_URLS
    return shown + (f" and {more} more" if more > 0 else "")
