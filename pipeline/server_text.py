"""Text that came from a server, made fit to store and show: valid Unicode, and no secrets.

A JSON answer may hold lone surrogates (`"\\ud800"`), which no UTF-8 file, database or
terminal can take; `valid` turns them into U+FFFD. A server may echo the API key or the
password of its URL in an error; `redact` hides both (the password also as the Basic
credential it is sent as), and any `Bearer` token, before pipe prints or stores the text.
The secrets are learnt where they become a request's credentials (`remember`, called by
backends.http.make_client), so the exact key is hidden wherever it appears.
"""

from __future__ import annotations

import base64
import re
import threading
from urllib.parse import unquote, urlsplit

HIDDEN = "***"
MIN_SECRET = 4  # shorter "secrets" would hide ordinary words
_known: set[str] = set()
_lock = threading.Lock()
_BEARER = re.compile(r"\b(Bearer)(\s+)[^\s\"',;]+", re.IGNORECASE)
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")


def valid(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (a pair written as two escapes
    becomes the one character it encodes)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def remember(secret: str | None) -> None:
    """A value that must never be shown or stored (an API key, a URL's password)."""
    if secret and len(secret) >= MIN_SECRET:
        with _lock:
            _known.add(secret)


def remember_url(url: str) -> None:
    """The password in `url` (or its user, when that alone is a token), if it has one."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    value = parts.password or parts.username
    if value:
        remember(value)
        remember(unquote(value))
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        remember(base64.b64encode(f"{user}:{password}".encode()).decode())  # as httpx sends it


def redact(text: str) -> str:
    """`text` valid, with known secrets, credentials and a URL's `user:password@` hidden."""
    text = _USERINFO.sub(rf"\1{HIDDEN}@", valid(text))
    text = _BEARER.sub(rf"\1\2{HIDDEN}", text)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, HIDDEN)
    return text
