"""pipe's own XMP fields, set into XMP that may hold anything else: a darktable or digiKam
sidecar, a photo's embedded packet. exiv2 (python-exiv2, whose wheels ship libexiv2) does
the XMP: it keeps every property and namespace it read, whatever it is, and writes
RDF that every photo manager reads.

pipe's fields are `XmpFields`: the caption (`dc:description`, the default language only;
other languages stay), keywords (`dc:subject`) and hierarchical keywords
(`lr:hierarchicalSubject`). Keywords merge: what the file had stays, less what pipe wrote
there before (`previous`), plus the new ones, without duplicates (compared without case).

exiv2 does not raise on XML it cannot parse: it logs a warning and reads nothing, and
writing would then replace the user's sidecar with pipe's fields alone. So a sidecar is
checked to be well-formed XML first (expat, as `read.py` reads packets: no DOCTYPE), and
whatever exiv2 logs while reading is an error here. Nothing exiv2 logs reaches stderr.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.parsers import expat

from pipeline.media.xmp.read import MAX_PACKET

if TYPE_CHECKING:
    import exiv2

DESCRIPTION = "Xmp.dc.description"
SUBJECT = "Xmp.dc.subject"
HIERARCHICAL = "Xmp.lr.hierarchicalSubject"
DEFAULT_LANGUAGE = "x-default"


class XmpError(ValueError):
    """XMP pipe will not merge into: broken, too big, or refused by exiv2. One line."""


@dataclass(frozen=True)
class XmpFields:
    """What pipe says about a photo; None leaves a property as it is."""

    description: str | None = None  # dc:description, in the default language
    keywords: tuple[str, ...] | None = None  # dc:subject
    hierarchical: tuple[str, ...] | None = None  # lr:hierarchicalSubject ("a|b|c")

    def to_json(self) -> dict[str, object]:
        """The fields set, as JSON values: what the journal keeps of what pipe wrote."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in vars(self).items()
            if value is not None
        }

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> XmpFields:
        """`to_json`'s fields back (anything else in `values` is not read)."""
        description = values.get("description")
        lists = {
            name: tuple(str(k) for k in values[name])
            for name in ("keywords", "hierarchical")
            if isinstance(values.get(name), list)
        }
        return cls(description=description if isinstance(description, str) else None, **lists)


def merge_sidecar(
    existing: bytes | None, fields: XmpFields, previous: XmpFields | None = None
) -> bytes:
    """The sidecar's new bytes: `existing` (None: no sidecar yet) with pipe's fields set and
    every other property kept. Raises XmpError for a sidecar pipe must not replace."""
    exiv2 = load_exiv2()
    with exiv2_log() as messages:
        try:
            if existing is None:
                image = exiv2.ImageFactory.create(exiv2.ImageType.xmp)
            else:
                check_well_formed(existing)
                image = exiv2.ImageFactory.open(existing)
                if image.imageType() != exiv2.ImageType.xmp:
                    raise XmpError("not an XMP sidecar")
                image.readMetadata()
                if messages:
                    raise XmpError(f"exiv2 cannot read it: {messages[0]}")
            apply(image.xmpData(), fields, previous)
            image.writeMetadata()
        except exiv2.Exiv2Error as e:
            raise XmpError(f"exiv2: {exiv2_message(e)}") from None
        io = image.io()
        view = io.mmap()
        try:
            out = bytes(view)
        finally:
            io.munmap()
    _check_read_back(out, fields)
    return out


def _check_read_back(out: bytes, fields: XmpFields) -> None:
    """Raise XmpError unless `out` reads back with pipe's fields: exiv2 can write XMP it
    cannot read (an `xml:` property in the input comes out bound to a wrong namespace,
    found by fuzzing), and such a sidecar must never replace the user's."""
    try:
        back = read_sidecar(out)
    except XmpError as e:
        raise XmpError(f"exiv2 wrote XMP it cannot read back ({e}); not replacing it") from None
    wanted = (
        fields.description is None or back.description == xml_text(fields.description)
    ) and all(
        new is None
        or {xml_text(k).casefold() for k in new if xml_text(k)}
        <= {k.casefold() for k in found or ()}
        for new, found in (
            (fields.keywords, back.keywords),
            (fields.hierarchical, back.hierarchical),
        )
    )
    if not wanted:
        raise XmpError("exiv2 wrote XMP that does not read back as written; not replacing it")


def read_sidecar(data: bytes) -> XmpFields:
    """pipe's fields as a sidecar holds them (for `{existing.*}` and the tests)."""
    exiv2 = load_exiv2()
    with exiv2_log() as messages:
        check_well_formed(data)
        try:
            image = exiv2.ImageFactory.open(data)
            image.readMetadata()
        except exiv2.Exiv2Error as e:
            raise XmpError(f"exiv2: {exiv2_message(e)}") from None
        if messages:
            raise XmpError(f"exiv2 cannot read it: {messages[0]}")
        return read(image.xmpData())


def apply(data: exiv2.XmpData, fields: XmpFields, previous: XmpFields | None = None) -> None:
    """Set pipe's fields in exiv2's `data` (a sidecar's or a photo's), keeping the rest."""
    exiv2 = load_exiv2()
    if fields.description is not None:
        languages = dict(_value(data, DESCRIPTION) or {})
        languages[DEFAULT_LANGUAGE] = xml_text(fields.description)
        # Built from the mapping, not read from `lang="…" text`: a language tag in the
        # user's file may hold quotes or newlines (exiv2 orders x-default first itself).
        value = exiv2.LangAltValue(languages)
        _replace(data, DESCRIPTION, value)
    for key, new, old in (
        (SUBJECT, fields.keywords, previous.keywords if previous else None),
        (HIERARCHICAL, fields.hierarchical, previous.hierarchical if previous else None),
    ):
        if new is not None:
            bag = exiv2.XmpArrayValue(exiv2.TypeId.xmpBag)
            for keyword in merged(_value(data, key) or (), map(xml_text, new), old or ()):
                bag.read(keyword)
            _replace(data, key, bag)


def read(data: exiv2.XmpData) -> XmpFields:
    """pipe's fields as exiv2's `data` holds them; None where a property is absent."""
    languages = _value(data, DESCRIPTION)
    keywords, hierarchical = _value(data, SUBJECT), _value(data, HIERARCHICAL)
    return XmpFields(
        description=dict(languages).get(DEFAULT_LANGUAGE) if languages is not None else None,
        keywords=tuple(keywords) if keywords is not None else None,
        hierarchical=tuple(hierarchical) if hierarchical is not None else None,
    )


def merged(existing: Iterable[str], new: Iterable[str], previous: Iterable[str]) -> list[str]:
    """The file's keywords less pipe's previous ones, then pipe's new ones, each once
    (without case: "Dog" and "dog" are one keyword), in that order."""
    dropped = {k.casefold() for k in previous}
    out: list[str] = []
    seen: set[str] = set()
    for keyword in [k for k in existing if k.casefold() not in dropped] + list(new):
        if keyword and keyword.casefold() not in seen:
            seen.add(keyword.casefold())
            out.append(keyword)
    return out


def exiv2_message(error: Exception) -> str:
    """The message of an exiv2 error as one line (it may quote the file's text)."""
    return " ".join(str(error.args[-1] if error.args else error).split())[:300]


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot hold (a model may answer any)."""
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20).strip()


_XML_NS = "http://www.w3.org/XML/1998/namespace "
_XML_ALLOWED = {_XML_NS + "lang"}


def check_well_formed(data: bytes) -> None:
    """Raise XmpError unless `data` is well-formed XML without a DOCTYPE, at most
    MAX_PACKET bytes (exiv2 would read broken XML as empty, and pipe would replace it)."""
    if len(data) > MAX_PACKET:
        raise XmpError(f"over {MAX_PACKET >> 20} MiB, more than an XMP sidecar holds")
    parser = expat.ParserCreate(namespace_separator=" ")

    def refuse(*_: object) -> None:
        raise XmpError("it declares a DOCTYPE, which XMP never does")

    def start(name: str, attributes: dict[str, str]) -> None:
        # A property in the XML namespace (`xml:odd="x"`) makes exiv2 register `xml` for a
        # wrong URI, for the rest of the process: every sidecar it writes after is unreadable
        # (found by fuzzing). XMP uses only xml:lang.
        for odd in (name, *attributes):
            if odd.startswith(_XML_NS) and odd not in _XML_ALLOWED:
                raise XmpError(f"it has a property xml:{odd[len(_XML_NS) :]}, which XMP never does")

    def declare(prefix: str | None, uri: str | None) -> None:
        # exiv2 takes a file's binding for a prefix it knows (dc: to another URI) for the
        # rest of the process: pipe's own fields would be written under it (fuzzing).
        # Only the prefixes pipe writes: real photos bind others loosely (Windows writes
        # MicrosoftPhoto: without exiv2's trailing slash).
        known = standard.get(prefix or "") if prefix in _GUARDED else None
        if known is not None and uri != known:
            raise XmpError(f"it binds {prefix}: to {uri!r}, not to {known!r}")

    standard = _standard_namespaces()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    parser.StartNamespaceDeclHandler = declare
    try:
        parser.Parse(data, True)
    except XmpError:
        raise
    except (LookupError, ValueError) as e:  # encoding="UTF-6", "UTF-7": found by fuzzing
        raise XmpError(f"it declares an encoding pipe cannot read ({e})") from None
    except expat.ExpatError as e:
        raise XmpError(
            f"not well-formed XML ({expat.ErrorString(e.code)}, line {e.lineno})"
        ) from None


def _value(data: exiv2.XmpData, key: str) -> Any:
    """A property's value as Python: a LangAlt's (language, text) pairs, an array's texts,
    else its text; None when absent."""
    exiv2 = load_exiv2()
    found = data.findKey(exiv2.XmpKey(key))
    if found == data.end():
        return None
    value = found.value()
    if isinstance(value, exiv2.LangAltValue):
        return list(value.items())
    if isinstance(value, exiv2.XmpArrayValue):
        return [value.toString(i) for i in range(value.count())]
    return [value.toString()]


def _replace(data: exiv2.XmpData, key: str, value: Any) -> None:
    exiv2 = load_exiv2()
    xmp_key = exiv2.XmpKey(key)
    found = data.findKey(xmp_key)
    if found != data.end():
        data.erase(found)
    data.add(xmp_key, value)


_lock = threading.Lock()
_in_use = threading.RLock()
_STANDARD: dict[str, str] = {}
_GUARDED = frozenset({"x", "rdf", "dc", "lr"})  # the prefixes of what pipe writes
_local = threading.local()
_ready = False


def _standard_namespaces() -> dict[str, str]:
    """prefix -> URI as exiv2 knows them before reading any file."""
    load_exiv2()
    return _STANDARD


def load_exiv2() -> Any:
    """exiv2, imported on first use (loading a recipe imports the actions) with the XMP
    toolkit initialised once (it is not safe to initialise from two threads) and its log
    sent to the thread that is reading, never to stderr."""
    global _ready
    import exiv2

    if not _ready:
        with _lock:
            if not _ready:
                exiv2.XmpParser.initialize()
                # Before any file is read: what exiv2 itself binds each prefix to.
                _STANDARD.update(exiv2.XmpProperties.registeredNamespaces())
                exiv2.LogMsg.setLevel(exiv2.LogMsg.Level.warn)
                # python-exiv2 logs through the `exiv2` logger.
                logger = logging.getLogger("exiv2")
                logger.addHandler(_Collect())
                logger.propagate = False
                _ready = True
    return exiv2


class _Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        messages = getattr(_local, "messages", None)
        if messages is not None:
            messages.append(" ".join(record.getMessage().split())[:200])


@contextmanager
def exiv2_log() -> Iterator[list[str]]:
    """What exiv2 logs in this thread while the block runs. One block at a time in the
    process (exiv2's namespace registry is shared), and after each, exiv2 as it started."""
    with _in_use:
        _local.messages = messages = []
        try:
            yield messages
        finally:
            _local.messages = None
            _restore_namespaces()


def _restore_namespaces() -> None:
    """exiv2 keeps what a file bound a prefix it knows to (`xmp:` to another URI) for the
    rest of the process, and writes every later file's properties under it; a broken
    binding even breaks its namespace map (all found by fuzzing). Checked after every use
    (0.07 ms) and, when changed, the XMP toolkit is started afresh (0.01 ms)."""
    exiv2 = load_exiv2()
    try:
        now = exiv2.XmpProperties.registeredNamespaces()
        if all(now.get(prefix) == uri for prefix, uri in _STANDARD.items()):
            return
    except exiv2.Exiv2Error:
        pass
    exiv2.XmpProperties.unregisterNs()
    exiv2.XmpParser.terminate()
    exiv2.XmpParser.initialize()
