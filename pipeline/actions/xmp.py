"""Write each answer into the photo's XMP sidecar, merged with what is there: a caption as
dc:description or keywords as dc:subject (`then.field`, `xmp_keys.py`), every other field
and namespace kept (a darktable or digiKam sidecar is the normal case).

The sidecar is read (bounded), merged by `media/xmp/fields.merge_sidecar` (exiv2), and
written through `replacing.replace_journaled`, so its old bytes are kept and `pipe undo`
puts them back. What pipe wrote there last time (the journal's `fields`) is `previous`: a
re-run with a new answer replaces pipe's keywords instead of piling them up, and two
recipes writing one sidecar (a caption, keywords) add to each other; pipe's runs take
turns on a lock while reading and replacing one. With Lightroom's naming (`photo.xmp`,
config's xmp_sidecar) the photos of one stem share a sidecar: each photo's keywords are
its own (`source` in the journal), the caption is the last one written. The same content
again writes nothing. A sidecar exiv2 cannot read fails the item and is never replaced.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Any

from pipeline.actions.base import digest
from pipeline.actions.replacing import FileState, holding, replace_journaled
from pipeline.actions.xmp_keys import XmpWriter
from pipeline.media.xmp.fields import XmpError, XmpFields, merge_sidecar, read_sidecar
from pipeline.media.xmp.read import MAX_PACKET
from pipeline.media.xmp.write import packet
from pipeline.paths import display_path
from pipeline.results import ActionError, Result

KIND = "xmp"  # the journal's kind for sidecars


def sidecar_of(path: str, naming: str) -> str:
    """`photo.jpg.xmp` (darktable, digiKam: one per file) or `photo.xmp` (Lightroom, Capture
    One: shared by the photos of one stem, IMG_1.jpg and IMG_1.CR2, as they share it)."""
    if naming == "photo.xmp":
        return os.path.splitext(path)[0] + ".xmp"
    return path + ".xmp"


class XmpSidecar(XmpWriter):
    """The photo's XMP sidecar with pipe's fields merged in (see the module's doc)."""

    name = "xmp"

    def target(self, path: str) -> str:
        target = sidecar_of(path, self.context.xmp_sidecar)
        if os.path.abspath(target) == os.path.abspath(path):
            raise ActionError("the sidecar would be the input file itself")
        return target

    def apply(self, result: Result) -> None:
        if result.text is not None and result.is_file:
            try:
                with nullcontext() if self.dry_run else holding(self.store):
                    self._write(result.path, result.text)
            except (ActionError, XmpError, OSError) as e:
                # (as a sidecar: the xmp action is one, its errors have always said so)
                result.status, result.error = "failed", f"sidecar: {_line(e)}"
        if self.as_json or not result.is_file:
            self.emit(result)

    def _write(self, path: str, answer: str) -> None:
        target = self.target(path)
        found = FileState.read(target, MAX_PACKET)
        existing, state = found if found else (None, None)
        fields = self.fields(answer)
        if existing is None and fields.keywords == ():
            return  # no keywords in the answer, and no sidecar to take pipe's old ones out of
        source = display_path(path)
        previous = _previous(
            self.store.replaced.written_fields(target, KIND, self.recipe.name), source
        )
        try:
            new = content(existing, fields, previous)
        except XmpError as e:
            raise ActionError(f"{target}: {e}; not replacing it") from None
        changes = existing is None or not same_fields(existing, new)
        if self.dry_run:
            shown = f"{path} -> {target}"
            if existing is not None:
                shown += " (merged)" if changes else " (unchanged)"
            self.out.write(self.shown.name(shown) + "\n")
            return
        if not changes:
            return
        replace_journaled(
            self.store,
            self.run_id(),
            target,
            new,
            expected=state,
            kind=KIND,
            recipe=self.recipe.name,
            fields={**fields.to_json(), "source": source},
        )
        self.store.remember_output(os.path.abspath(target), digest(new), len(new))


def content(existing: bytes | None, fields: XmpFields, previous: XmpFields | None) -> bytes:
    """The sidecar's new bytes. A caption alone into no sidecar, or into one that is pipe's
    own packet and nothing else, is that packet (as pipe has always written it); anything
    else is merged by exiv2, keeping every other property."""
    caption_only = fields.keywords is None and fields.hierarchical is None
    if caption_only and (existing is None or _is_own_packet(existing)):
        return packet(fields).encode()
    return merge_sidecar(existing, fields, previous)


def _is_own_packet(data: bytes) -> bool:
    if b'x:xmptk="pipe"' not in data[:300]:
        return False
    try:
        held = read_sidecar(data)
    except XmpError:
        return False
    return packet(XmpFields(description=held.description)).encode() == data


def same_fields(existing: bytes, new: bytes) -> bool:
    """Whether writing `new` over `existing` would change nothing pipe sets: the same bytes,
    or pipe's fields already as they would be (the file's own layout, say darktable's,
    is then left alone: cron re-runs write nothing)."""
    if existing == new:
        return True
    try:
        return read_sidecar(existing) == read_sidecar(new)
    except XmpError:
        return False


def _previous(written: dict[Any, dict[str, Any]], source: str) -> XmpFields | None:
    """What pipe wrote into the sidecar for this photo last time, less what it wrote there
    for other photos sharing it (IMG_1.jpg and IMG_1.CR2 in IMG_1.xmp): those stay."""
    mine = written.get(source)
    if not mine:
        return None
    lists: dict[str, tuple[str, ...] | None] = {}
    for name in ("keywords", "hierarchical"):
        others = {
            str(k).casefold()
            for other, values in written.items()
            if other != source
            for k in values.get(name) or ()
        }
        values = mine.get(name)
        lists[name] = (
            tuple(str(k) for k in values if str(k).casefold() not in others)
            if isinstance(values, list)
            else None
        )
    return XmpFields(keywords=lists["keywords"], hierarchical=lists["hierarchical"])


def _line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return " ".join(str(error).split())
