"""What happens to an answer: printed on stdout (text or JSON Lines) or written beside the file.

Actions are the only code that writes where the user's files live. A sidecar is written to
a temporary name and moved into place, never outside the file's own folder, and never over
a file that pipe did not write itself.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol
from xml.sax.saxutils import escape

from pipeline import renames
from pipeline.naming import UnusableName, plan_renames, safe_filename, slug
from pipeline.recipe import Recipe
from pipeline.renames import Move, Outcome
from pipeline.templates import TemplateError
from pipeline.terminal import Shown


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
    started: str | None = None  # when work on it began (ISO time), for its history
    duration_ms: int | None = None  # the item's own time: reading, preparing, the model
    waited: float = 0.0  # seconds queued for a free server slot, left out of duration_ms
    attempts: int = 0
    is_file: bool = True
    fields: dict[str, Any] = field(default_factory=dict)  # exif, ext, step answers: for names
    deferred: bool = False  # the action finishes it at the end of the run (renames)
    forget_answer: bool = False  # the answer was unusable: do not serve it from the cache
    new_path: str | None = None

    def count_attempt(self) -> None:
        self.attempts += 1

    def record(self, model: str) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "status": self.status}
        if self.answer is not None:
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
        self.shown = Shown(out)  # answers and names escaped when stdout is a terminal
        self._first = True

    def apply(self, result: Result) -> None:
        """Called for every finished item (skipped ones included, with the cached answer)."""
        self.emit(result)

    def close(self, run_id: int) -> None:
        """At the end of the run: finish the items this action deferred (renames)."""

    def emit(self, result: Result) -> None:
        if self.as_json:
            self.out.write(json.dumps(result.record(self.model), ensure_ascii=False) + "\n")
        elif result.answer is not None and result.status != "failed":
            if self.headers:
                header = f"==> {self.shown.name(result.path)} <=="
                self.out.write(("" if self._first else "\n") + header + "\n")
            self.out.write(self.shown.text(result.answer.rstrip("\n")) + "\n")
            self._first = False
        else:
            return
        self.out.flush()


class Sidecar(Action):
    """Write the answer to a file beside the input, named by the recipe's `then.sidecar`."""

    def __init__(
        self, recipe: Recipe, outputs: OutputLog, dry_run: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.recipe = recipe
        self.outputs = outputs
        self.dry_run = dry_run

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

    def content(self, answer: str) -> str:
        return answer.rstrip("\n") + "\n"

    def apply(self, result: Result) -> None:
        if result.answer is not None and result.is_file:
            try:
                target = self.target(result.path)
                if self.dry_run:
                    self.out.write(self.shown.name(f"{result.path} -> {target}") + "\n")
                else:
                    self.write(target, self.content(result.answer))
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


class XmpSidecar(Sidecar):
    """`photo.jpg.xmp` (the darktable/digiKam convention: one sidecar per file, never
    shared with a raw file of the same stem) with the answer as dc:description."""

    def target(self, path: str) -> str:
        return path + ".xmp"

    def content(self, answer: str) -> str:
        return XMP_TEMPLATE.format(description=xml_escape(answer.strip()))


XMP_TEMPLATE = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="pipe">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">{description}</rdf:li>
    </rdf:Alt>
   </dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def xml_escape(text: str) -> str:
    """Escape for XML text, dropping characters XML 1.0 cannot hold (model output may
    contain any of them)."""
    allowed = "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)
    return escape(allowed, {'"': "&quot;"})


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RenameAction(Action):
    """Collects answers during the run; at the end plans every new name at once (collisions
    need the whole batch), then prints the plan (dry run) or journals and applies it."""

    def __init__(self, recipe: Recipe, store: Any, dry_run: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recipe = recipe
        self.store = store
        self.dry_run = dry_run
        self.collected: list[Result] = []

    def apply(self, result: Result) -> None:
        if result.status in ("failed", "skipped") or result.answer is None or not result.is_file:
            if self.as_json:
                self.emit(result)
            return
        result.deferred = True
        self.collected.append(result)

    def close(self, run_id: int) -> None:
        wanted: list[tuple[Path, str]] = []
        planned: dict[str, Result] = {}
        for counter, result in enumerate(self.collected, 1):
            if self.store.renamed_by_pipe(result.path):
                result.status, result.deferred = "done", False
                result.notes.append("already renamed by pipe")
                continue
            try:
                wanted.append((Path(result.path), self.new_name(result, counter)))
            except (UnusableName, TemplateError) as e:
                result.status, result.error, result.deferred = "failed", str(e), False
                result.forget_answer = True  # so a re-run asks the model again
                continue
            planned[str(Path(result.path))] = result
        in_batch = {str(Path(r.path)) for r in self.collected}
        moves = plan_moves(wanted, in_batch)
        moving = {m.old for m in moves}
        for result in self.collected:
            if result.deferred and str(Path(result.path)) not in moving:
                result.status, result.deferred = "done", False
                result.notes.append("already named")
        if self.dry_run:
            outcomes = [Outcome(m.old, m.new, "planned", companion=m.companion) for m in moves]
        else:
            outcomes = renames.apply(self.store, run_id, moves)
        for outcome in outcomes:
            self._show(outcome)
            result = planned.get(outcome.old)
            if result is None or outcome.companion:
                continue
            result.deferred = False
            if outcome.state == "applied":
                result.status, result.new_path = "done", outcome.new
            elif outcome.state == "planned":
                result.status, result.new_path = "planned", outcome.new
            else:
                result.status, result.error = "failed", f"not renamed: {outcome.reason}"
        if self.as_json:
            for result in self.collected:
                self.emit(result)

    def new_name(self, result: Result, counter: int) -> str:
        """The file's new name from the recipe's template; UnusableName if nothing is left."""
        assert self.recipe.new_name is not None
        fields = dict(result.fields)
        answer = result.answer or ""
        if not slug(answer):
            raise UnusableName(
                f"the model's answer gives nothing usable for a name: {answer!r:.60}"
            )
        name = os.path.basename(result.path)
        stem, ext = os.path.splitext(name)
        real_ext = str(fields.get("ext") or ext)
        fields.update(answer=answer, name=name, stem=stem, ext=real_ext, counter=counter)
        rendered = self.recipe.new_name.render(fields)
        new_stem, rendered_ext = os.path.splitext(rendered)
        if rendered_ext.lower() != real_ext.lower():
            new_stem = rendered  # the template did not end with {ext}: keep all of it
        return safe_filename(new_stem, real_ext)

    def _show(self, outcome: Outcome) -> None:
        if self.as_json:
            return
        mark = {"applied": "", "planned": ""}.get(
            outcome.state, f"  [{outcome.state}: {outcome.reason}]"
        )
        self.out.write(self.shown.name(f"{outcome.old} -> {outcome.new}{mark}") + "\n")
        self.out.flush()


def plan_moves(wanted: list[tuple[Path, str]], in_batch: set[str]) -> list[Move]:
    """New names for every file and its companions (IMG_1.CR2, IMG_1.xmp, IMG_1.jpg.txt move
    with IMG_1.jpg), collisions resolved against the disk and the whole batch."""
    listings: dict[Path, list[str]] = {}
    companions = {str(old): find_companions(old, in_batch, listings) for old, _ in wanted}

    def also_free(old: Path, candidate: Path) -> list[Path]:
        return [companion_target(old, c, candidate) for c in companions[str(old)]]

    moves: list[Move] = []
    for group, (old, new) in enumerate(plan_renames(wanted, also_free=also_free)):
        moves.append(Move(str(old), str(new), group))
        for companion in companions[str(old)]:
            target = companion_target(old, companion, new)
            moves.append(Move(str(companion), str(target), group, companion=True))
    return moves


def find_companions(photo: Path, in_batch: set[str], listings: dict[Path, list[str]]) -> list[Path]:
    """Files beside `photo` that belong to it: same stem with another extension (raw, XMP),
    or its full name plus a suffix (IMG_1.jpg.txt); never another photo of this batch.
    `listings` caches each folder's sorted names, read once for the whole batch."""
    if photo.parent not in listings:
        try:
            listings[photo.parent] = sorted(os.listdir(photo.parent), key=str.casefold)
        except OSError:
            listings[photo.parent] = []
    names = listings[photo.parent]
    stem, full = photo.stem.casefold(), photo.name.casefold() + "."
    # Companions sort right after the stem: search from there, stop past the prefix.
    start = bisect.bisect_left(names, stem, key=str.casefold)
    found = []
    for name in names[start:]:
        folded = name.casefold()
        if not folded.startswith(stem):
            break
        candidate = photo.parent / name
        if name == photo.name or str(candidate) in in_batch:
            continue
        belongs = os.path.splitext(folded)[0] == stem or folded.startswith(full)
        if belongs and candidate.is_file() and not candidate.is_symlink():
            found.append(candidate)
    return found


def companion_target(photo: Path, companion: Path, new_photo: Path) -> Path:
    if companion.name.casefold().startswith(photo.name.casefold() + "."):
        return new_photo.parent / (new_photo.name + companion.name[len(photo.name) :])
    return new_photo.parent / (new_photo.stem + companion.name[len(photo.stem) :])


def make_action(
    recipe: Recipe, write: str | None, store: Any, dry_run: bool, **kwargs: Any
) -> Action:
    """The action for a run: the recipe's `then.action`, or what --write asks for."""
    kind = write or recipe.action
    if kind == "stdout":
        kind = "print"
    if kind == "rename":
        return RenameAction(recipe, store, dry_run, **kwargs)
    if kind == "sidecar":
        return Sidecar(recipe, store, dry_run=dry_run, **kwargs)
    if kind == "xmp":
        return XmpSidecar(recipe, store, dry_run=dry_run, **kwargs)
    return Action(**kwargs)
