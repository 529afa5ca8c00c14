"""What the engine and the actions share: one item's `Result`, the `ResultSink` the engine
hands each result to (an action), and the `ActionError` a sink may raise when it closes.

Neutral ground, so that the engine never imports `pipeline.actions`: `api.run` opens the
action and gives it to the engine as a `ResultSink`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.answers import Answer, Picture

# What `Result.status` may be: asked now, answered from the cache, already finished (the
# action still sees it), failed, or (a dry run's rename) planned.
STATUSES = ("done", "cached", "skipped", "failed", "planned")


@dataclass
class Result:
    """One item's outcome, as the runner hands it to an action and to the store."""

    path: str
    status: str  # one of STATUSES
    answer: Answer | None = None  # text, or a picture
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    started: str | None = None  # when work on it began (ISO time), for its history
    duration_ms: int | None = None  # the item's own time: reading, preparing, the model
    waited: float = 0.0  # seconds queued for a free server slot, left out of duration_ms
    attempts: int = 0
    is_file: bool = True
    fields: dict[str, Any] = field(default_factory=dict)  # exif, ext, step answers: for names
    deferred: bool = False  # the action finishes it at the end of the run (renames)
    forget_answer: bool = False  # the answer was unusable: do not serve it from the cache
    new_path: str | None = None
    output: str | None = None  # the file the action wrote the answer to (a picture's PNG)
    # The input's size and mtime_ns once the action rewrote it in place (metadata embedded
    # in a photo): what the item is recorded with, so a re-run finds it finished.
    rewritten: tuple[int, int] | None = None

    @property
    def text(self) -> str | None:
        """The answer when it is text (None for a picture, or no answer)."""
        return self.answer if isinstance(self.answer, str) else None

    def count_attempt(self) -> None:
        self.attempts += 1

    def record(self, model: str) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "status": self.status}
        if isinstance(self.answer, Picture):  # its file and digest; never the pixels
            out["image"] = {"path": self.output, **self.answer.describe()}
        elif self.answer is not None:
            out["answer"] = self.answer
        if self.error:
            out["error"] = self.error
        if self.notes:
            out["note"] = "; ".join(self.notes)
        if self.new_path:
            out["new_path"] = self.new_path
        out["model"] = model
        for key in ("prompt_tokens", "completion_tokens", "duration_ms"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


class ActionError(Exception):
    pass


class ResultSink(Protocol):
    """Where the engine sends results: an action (see `pipeline.actions.base.Action`)."""

    @property
    def name(self) -> str:
        """The action's name, which an error from `close` is reported under."""

    def apply(self, result: Result) -> None:
        """Every finished item, in input order; may turn it into a failure."""

    def close(self, run_id: int) -> None:
        """At the end of the run; ActionError if what it deferred could not be finished."""
