"""A run's bookkeeping in the store, done on the main thread: which items need work, and
what became of each (items, history, answers, counts). Workers never write."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Any, Final

from pipeline.answers import Answer
from pipeline.engine.items import Done, Item
from pipeline.engine.options import Options
from pipeline.paths import display_path
from pipeline.recipe import Recipe
from pipeline.results import Result
from pipeline.store.database import Counts, Store, now_iso
from pipeline.store.folder_rows import FolderRows
from pipeline.store.items import ItemRow


class NotInput(Enum):
    """What Ledger.admit says of a file pipe wrote: not an input, not even shown."""

    NOT_INPUT = "not an input"


NOT_INPUT: Final = NotInput.NOT_INPUT


class Ledger:
    def __init__(
        self, store: Store, recipe: Recipe, run_id: int, ask_key: str, options: Options
    ) -> None:
        self.store = store
        self.recipe = recipe
        self.run_id = run_id
        self.ask_key = ask_key
        self.options = options
        self.counts = Counts()
        # What the store says of each walked file (its item, and whether pipe wrote it),
        # read a folder's chunk at a time: a finished folder costs a query per chunk.
        self._files = FolderRows(
            lambda folder, start, limit: store.files_in_folder(recipe.name, folder, start, limit),
            lambda key: store.file_row(recipe.name, key),
        )

    def admit(self, item: Item) -> Done | Result | None | NotInput:
        """Decide from the store what an item needs: None, work (it is claimed: send it to
        a worker); a Result, none (already settled: only shown, nothing recorded); a Done,
        only recording (a path that cannot be read); NOT_INPUT, nothing at all (a file
        pipe wrote). Every file of a re-check comes here: its finished path is the cheap one."""
        entry = item.entry
        if entry.error:
            return Done(item, Result(entry.path, "failed", error=entry.error))
        if item.data is not None:
            return None  # stdin text: no file to track, the answer cache still applies
        st = entry.stat
        assert st is not None
        file = self._files.get(entry.key)
        if file is not None:
            # A sidecar (or XMP) that pipe wrote is never an input: else each cron run would
            # summarize the last run's summaries (a.md.summary.txt.summary.txt ...). Its
            # path stays pipe's even when edited by hand, as pipe then refuses to overwrite it.
            if file.output is not None:
                return NOT_INPUT
            row = file.item
            if (
                row is not None
                and not self.options.redo
                and row.is_finished(st.st_size, st.st_mtime_ns, self.ask_key)
            ):
                return _settled(item, row, file.answer)
        verdict, row = self.store.claim(
            self.recipe.name,
            entry.key,
            self.run_id,
            st.st_size,
            st.st_mtime_ns,
            self.ask_key,
            self.options.redo,
        )
        if verdict == "claimed":
            return None
        if verdict == "busy":
            # Said and counted: this run's output (a sidecar, a print) lacks the file.
            result = Result(item.path, "skipped", notes=["another run is processing it"])
            self.counts.busy += 1
            if self.options.on_note:
                self.options.on_note(result)
            return result
        assert row is not None
        answer = self.store.cached_answer(row.fingerprint) if row.fingerprint else None
        return _settled(item, row, answer)

    def release(self, item: Item) -> None:
        self.store.release(self.recipe.name, item.entry.key, self.run_id)

    def save_answers(self, done: Done) -> None:
        """Keep the answers now, though the item finishes later (renames): a run killed
        before then costs no model time again."""
        self.store.save_answers(done.cache_rows)
        done.cache_rows = []

    def adopt_renamed(self, done: Done) -> None:
        """A renamed file stays finished under its new name."""
        result, stat = done.result, done.item.entry.stat
        if result.new_path and stat is not None and result.status == "done":
            self.store.adopt(
                self.recipe.name,
                display_path(result.new_path),
                self.run_id,
                stat.st_size,
                stat.st_mtime_ns,
                done.hash,
                self.ask_key,
                done.fingerprint,
            )

    def record(self, done: Done) -> None:
        result = done.result
        if result.forget_answer and done.fingerprint:
            self.store.forget_answer(done.fingerprint)
        status = {"done": "done", "cached": "done", "skipped": "skipped"}.get(
            result.status, "failed"
        )
        if (self.options.dry_run and status == "done") or result.status == "planned":
            status = "pending"  # previewed, not done: the real run does it (from the cache)
        self.counts.count(result.status)
        self.counts.prompt_tokens += result.prompt_tokens or 0
        self.counts.completion_tokens += result.completion_tokens or 0
        entry = done.item.entry
        if result.status == "failed" and self.options.on_error:
            self.options.on_error(result)
        elif result.status == "skipped" and self.options.on_note:
            self.options.on_note(result)  # first seen: say why (empty, binary…) once
        history = {
            "status": result.status,
            "fingerprint": done.fingerprint,
            "error": result.error,
            "note": "; ".join(result.notes) or None,
            "started": result.started or now_iso(),
            "duration_ms": result.duration_ms,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "attempts": result.attempts,
            "meta": _meta(result.fields, result.output),
        }
        if entry.stat is None or done.item.data is not None:
            # Not a tracked file (a bad argument, or stdin text): history and cache only.
            path = done.item.path if done.item.data is not None else entry.key
            self.store.record_untracked(
                self.run_id, self.recipe.name, path, history, done.cache_rows
            )
        else:
            size, mtime_ns = result.rewritten or (entry.stat.st_size, entry.stat.st_mtime_ns)
            self.store.finish(
                self.recipe.name,
                entry.key,
                self.run_id,
                status=status,
                size=size,
                mtime_ns=mtime_ns,
                hash=done.hash,
                ask_key=self.ask_key,
                fingerprint=done.fingerprint if status == "done" else None,
                reason=result.error or ("; ".join(result.notes) if status == "skipped" else None),
                attempts=result.attempts,
                history=history,
                cache_rows=done.cache_rows,
            )


def _settled(item: Item, row: ItemRow, answer: Answer | None) -> Result:
    """A file the store has settled (done, or skipped for a reason): shown, not recorded."""
    notes = [row.reason] if row.reason else []
    shown = answer if row.status == "done" else None
    return Result(item.path, "skipped", answer=shown, notes=notes)


def _meta(fields: dict[str, Any], output: str | None = None) -> str | None:
    """What `pipe show` tells besides the answer: the file written (a picture), and for a
    photo its date and where that came from (EXIF, XMP or the file's time), camera, place."""
    meta: dict[str, str] = {"written": output} if output else {}
    exif = fields.get("exif")
    if not isinstance(exif, dict):
        return json.dumps(meta, ensure_ascii=False) if meta else None
    if isinstance(exif.get("date"), datetime):
        meta["date"] = f"{exif['date']:%Y-%m-%d %H:%M:%S} (from {exif.get('date_source')})"
    for key in ("camera", "gps"):
        if exif.get(key):
            meta[key] = str(exif[key])
    return json.dumps(meta, ensure_ascii=False) if meta else None
