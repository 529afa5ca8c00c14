"""`--write embedded`: each answer into the photo's own XMP (and IPTC for JPEG and TIFF),
the fields the xmp action writes to a sidecar. The photo is written as a checked copy
beside it (`media/embedding`: same decoded pixels, fields read back, the rest kept), then
renamed over it through `replacing.replace_journaled` (kind "embedded"): its old bytes
are kept so `pipe undo` restores them exactly, and a SIGKILL at any instant leaves the old
photo or the new one.

The photo keeps its modification time (photo managers sort by it); the item is recorded
with the new file's size (`Result.rewritten`), and every recipe's item finished on the old
file is moved on to the new one (the pixels are the same), so no re-run redoes the photo
for pipe's own write. A photo that already holds the fields is only read. A format exiv2
cannot write safely fails the item with one line; the run goes on.
"""

from __future__ import annotations

import os

from pipeline.actions.replacing import FileState, replace_journaled
from pipeline.actions.xmp_keys import XmpWriter
from pipeline.media.xmp.fields import XmpFields
from pipeline.paths import display_path
from pipeline.results import ActionError, Result

KIND = "embedded"


class EmbeddedAction(XmpWriter):
    """The answer as the photo's caption or keywords, in its own XMP and IPTC."""

    name = "embedded"

    def apply(self, result: Result) -> None:
        if result.text is not None and result.is_file and result.status != "failed":
            try:
                self._embed(result, self.fields(result.text))
            except ActionError as e:
                result.status, result.error = "failed", f"embedded: {e}"
            except OSError as e:
                result.status, result.error = "failed", f"embedded: {e.strerror or e}"
        if self.as_json or not result.is_file:
            self.emit(result)

    def _embed(self, result: Result, fields: XmpFields) -> None:
        from pipeline.media.embedding import EmbedError, embed, holds

        path = result.path
        try:
            if self.dry_run:  # refused as the real run would refuse it; only read
                kind = holds(path, fields, self._previous(path))
                said = _said(fields, kind.iptc) if kind else "nothing: it holds them already"
                self.out.write(self.shown.name(f"{path}: would embed {said}") + "\n")
                return
            done = embed(path, fields, self._previous(path))
        except EmbedError as e:
            raise ActionError(str(e)) from None
        if done.temp is None or done.original is None:
            return  # the photo already holds them
        o = done.original
        try:
            replace_journaled(
                self.store,
                self.run_id(),
                path,
                done.temp,
                expected=FileState(o.size, o.mtime_ns, o.sha256),
                kind=KIND,
                recipe=self.recipe.name,
                fields=fields.to_json(),
            )
        finally:
            if os.path.lexists(done.temp):  # refused: pipe's copy is pipe's to remove
                os.unlink(done.temp)
        self.store.outputs.count_rewritten()  # the run's "written"
        st = os.stat(path)
        result.rewritten = (st.st_size, st.st_mtime_ns)
        self.store.items.rewritten(display_path(path), (o.size, o.mtime_ns), result.rewritten)

    def _previous(self, path: str) -> XmpFields | None:
        """What this recipe last embedded in this photo, so its own old keywords go."""
        written = self.store.replaced.written_fields(os.path.abspath(path), KIND, self.recipe.name)
        found = written.get(None)
        return XmpFields.from_json(found) if found else None


def _said(fields: XmpFields, iptc: bool) -> str:
    """What a dry run says it would write: `the caption (XMP, IPTC)`, `3 keywords (XMP)`."""
    parts = []
    if fields.description is not None:
        parts.append("the caption")
    if fields.keywords is not None:
        count = len(fields.keywords)
        parts.append(f"{count} keyword{'s' if count != 1 else ''}")
    where = "XMP, IPTC" if iptc else "XMP"
    return f"{' and '.join(parts) or 'nothing'} ({where})"
