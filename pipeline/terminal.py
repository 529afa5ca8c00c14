"""Text for a terminal: model answers and file names are untrusted, and a terminal obeys
the escape sequences in what it prints (`ESC ] 0 ;` retitles it, `ESC [ 2 J` clears it,
OSC 52 writes the clipboard). Shown escaped when the stream is a terminal, as `ls` and
`git` show odd names; files, pipes and --json keep the bytes as they are."""

from __future__ import annotations

import re
from typing import IO

# C0 controls, DEL, C1 controls (8-bit CSI/OSC), and the bidi controls that make text show
# in another order than it is stored ("gpj.exe" shown as "exe.jpg").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str, keep: str = "") -> str:
    """`text` with every control character written as a visible escape; `keep` names the
    ones that stay as they are (an answer keeps its line breaks: "\\n\\t")."""
    if keep:
        return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)
    return _UNSAFE.sub(_escape, text)


def is_terminal(stream: IO[str] | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # closed, or a stream without a file behind it
        return False


class Shown:
    """How one output stream shows untrusted text: escaped on a terminal, as is elsewhere."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.raw = not is_terminal(stream)

    def name(self, text: str) -> str:
        """A file name or a one-line message: nothing may move the cursor."""
        return text if self.raw else escape(text)

    def text(self, text: str) -> str:
        """An answer: line breaks and tabs stay, every other control is escaped."""
        return text if self.raw else escape(text, keep="\n\t")
