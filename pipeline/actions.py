"""What happens to an answer: printed on stdout (text or JSON Lines) or written beside the file.

Actions are the only code that writes where the user's files live. A sidecar is written to
a temporary name and moved into place, never outside the file's own folder, and never over
a file that pipe did not write itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from pipeline.recipe import Recipe
from pipeline.templates import TemplateError


@dataclass
class Result:
    """One item's outcome, as the runner hands it to an action and to the store."""

    path: str
    status: str  # done | cached | skipped | failed
    answer: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_ms: int | None = None
    attempts: int = 0
    is_file: bool = True

    def record(self, model: str) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "status": self.status}
        if self.answer is not None:
            out["answer"] = self.answer
        if self.error:
            out["error"] = self.error
        if self.notes:
            out["note"] = "; ".join(self.notes)
        out["model"] = model
        for key in ("prompt_tokens", "completion_tokens", "duration_ms"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


class ActionError(Exception):
    pass


class OutputLog(Protocol):
    """Remembers which files pipe wrote, so it replaces only its own (the state store)."""

    def output_digest(self, path: str) -> str | None: ...

    def remember_output(self, path: str, digest: str) -> None: ...


class Action:
    """Base: print answers (text or JSON Lines)."""

    def __init__(self, out: IO[str], as_json: bool, headers: bool, model: str) -> None:
        self.out = out
        self.as_json = as_json
        self.headers = headers
        self.model = model
        self._first = True

    def apply(self, result: Result) -> None:
        """Called for every finished item (skipped ones included, with the cached answer)."""
        self.emit(result)

    def emit(self, result: Result) -> None:
        if self.as_json:
            self.out.write(json.dumps(result.record(self.model), ensure_ascii=False) + "\n")
        elif result.answer is not None and result.status != "failed":
            if self.headers:
                self.out.write(("" if self._first else "\n") + f"==> {result.path} <==\n")
            self.out.write(result.answer.rstrip("\n") + "\n")
            self._first = False
        else:
            return
        self.out.flush()


class Sidecar(Action):
    """Write the answer to a file beside the input, named by the recipe's `then.sidecar`."""

    def __init__(self, recipe: Recipe, outputs: OutputLog, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recipe = recipe
        self.outputs = outputs

    def target(self, path: str) -> str:
        folder, name = os.path.split(path)
        stem, ext = os.path.splitext(name)
        fields = {
            "path": path,
            "name": name,
            "stem": stem,
            "ext": ext,
            "dir": folder,
            "recipe": self.recipe.name,
        }
        try:
            rendered = self.recipe.sidecar.render(fields)
        except TemplateError as e:
            raise ActionError(f"then.sidecar: {e}") from None
        target = os.path.normpath(rendered)
        if os.path.dirname(os.path.abspath(target)) != os.path.dirname(os.path.abspath(path)):
            raise ActionError(f"sidecar name {rendered!r} is not beside {path}")
        if os.path.abspath(target) == os.path.abspath(path):
            raise ActionError("sidecar name is the input file itself")
        return target

    def apply(self, result: Result) -> None:
        if result.answer is not None and result.is_file:
            try:
                target = self.target(result.path)
                self.write(target, result.answer.rstrip("\n") + "\n")
            except (ActionError, OSError) as e:
                result.status, result.error = "failed", f"sidecar: {e}"
        if self.as_json or not result.is_file:
            self.emit(result)

    def write(self, target: str, text: str) -> None:
        data = text.encode("utf-8")
        if os.path.lexists(target):
            with open(target, "rb") as f:
                existing = f.read()
            if existing == data:
                return
            if self.outputs.output_digest(os.path.abspath(target)) != _digest(existing):
                raise ActionError(f"{target} exists and was not written by pipe; not replacing it")
        folder = os.path.dirname(target) or "."
        fd, tmp = tempfile.mkstemp(prefix=".pipe-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.outputs.remember_output(os.path.abspath(target), _digest(data))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
