"""`{name_hint}`: a file's name when a person gave it ("beach party at Anna's"), empty when a
camera, a phone or an app made it up (`IMG_1234`, `DSC0001`, `PXL_20230101_…`, a UUID, a
date): such a name says nothing about the photo and would only mislead the model."""

from __future__ import annotations

import os
import re

# What devices and apps begin their names with, before the digits.
_PREFIXES = (
    "img", "image", "imag", "dsc", "dscn", "dscf", "dsc_", "_dsc", "_mg", "mg", "pict", "pic",
    "p", "photo", "foto", "pano", "mvimg", "vid", "mov", "pxl", "gopr", "gp", "gh", "dji",
    "sam", "cimg", "hpim", "kimg", "sdc", "sd", "dcp", "mvc", "wp", "dmc", "cam", "r", "s",
    "fb_img", "received", "snapchat", "signal", "telegram", "burst", "portrait", "export",
    "scan", "untitled", "unbenannt", "dcim", "lrm",
)  # fmt: skip
# What may follow the digits: more digits and dates, a copy's number, an edit's mark.
_TAIL = (
    r"(?:[\d_\-\s.~()]|[a-z]{1,2}\d|copy|kopie|edited|edit|bearbeitet|hdr|portrait|"
    r"burst\w*|cover|night|pano|mp|original|bokeh|collage|animation|effects|[a-z]\Z)*"
)
_CAMERA = re.compile(
    rf"(?:{'|'.join(re.escape(p) for p in _PREFIXES)})(?:[_\-\s]*\d{_TAIL})?\Z"
    r"|(?:whatsapp (?:image|video)|screenshot|screen ?shot|bildschirmfoto|captura)[_\-\s].*\d.*\Z"
    rf"|[0-9a-f]{{8}}-?[0-9a-f]{{4}}-?[0-9a-f]{{4}}-?[0-9a-f]{{4}}-?[0-9a-f]{{12}}{_TAIL}\Z"
    rf"|[0-9a-f]{{32}}\Z|[\d_\-\s.]+{_TAIL}\Z",
    re.IGNORECASE,
)
MAX_NAME = 255  # characters: longer is no file name (and bounds the matching)
MAX_HINT = 200  # characters of the hint a prompt gets


def is_camera_name(stem: str) -> bool:
    """True for a name a device or an app made up, which says nothing about the photo."""
    stem = stem.strip()
    return not stem or (len(stem) <= MAX_NAME and _CAMERA.match(stem) is not None)


def name_hint(path: str) -> str:
    """The file's name as words ("beach_party-2019.jpg" -> "beach party 2019"), or "" when
    it is a made-up one."""
    stem = os.path.basename(path)
    while True:  # "IMG_1.MP.jpg" -> "IMG_1": no extension is a hint
        shorter, ext = os.path.splitext(stem)
        if not ext or not shorter or len(ext) > 6:
            break
        stem = shorter
    if is_camera_name(stem):
        return ""
    words = " ".join(re.sub(r"[_\-.+]+", " ", stem).split())
    return "".join(c for c in words if c.isprintable())[:MAX_HINT]
