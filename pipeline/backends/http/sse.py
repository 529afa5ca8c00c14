"""Server-Sent Events, decoded from bytes as they arrive: the streams of llama.cpp's
`/completion`, koboldcpp's `/api/extra/generate/stream` and OpenAI's chat. Pure (no I/O), so
it is fuzzed alone (tests/backends/fuzz_sse.py).

As the spec says: lines end in LF, CRLF or CR; `field: value` (one space after the colon
dropped); `data` lines joined by LF; a blank line ends an event; `:` lines are comments.
One addition: the old llama.cpp server (llamafile's) reports a failure mid-stream as an
`error: {json}` line, which becomes an event named "error" rather than being ignored."""

from __future__ import annotations

from dataclasses import dataclass

# One line longer than this is not an event pipe can use (the biggest, llama.cpp's last
# event, echoes the prompt: a few hundred KB for a long file); it fails fast, whole.
MAX_LINE = 16 << 20


class BadStream(ValueError):
    """The bytes are not an event stream pipe can read (invalid UTF-8, a line too long)."""


@dataclass(frozen=True)
class Event:
    name: str  # "message" unless an `event:` line says otherwise; "error" for `error:`
    data: str


class SSEDecoder:
    """Feed it the body's chunks as they come; it returns each event once it is complete."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer already known to hold no line end
        self._cr = False  # the last chunk ended in CR: an LF first in the next is its pair
        self._name = ""
        self._data: list[str] = []
        self._error: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        if self._cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._cr = False
        self._buffer += chunk
        events: list[Event] = []
        start = 0
        while True:
            end = _line_end(self._buffer, max(start, self._scanned))
            if end < 0:
                break
            line = bytes(self._buffer[start:end])
            if self._buffer[end] == 0x0D:
                if end + 1 == len(self._buffer):
                    self._cr = True  # the LF may come in the next chunk
                elif self._buffer[end + 1] == 0x0A:
                    end += 1
            start = end + 1
            event = self._line(line)
            if event is not None:
                events.append(event)
        del self._buffer[:start]
        self._scanned = len(self._buffer)
        if len(self._buffer) > self.max_line:
            raise BadStream(f"a line of more than {self.max_line >> 20} MB")
        return events

    def close(self) -> list[Event]:
        """The stream ended: an event whose blank line never came is still an event."""
        events = []
        if self._buffer:
            event = self._line(bytes(self._buffer))
            self._buffer.clear()
            if event is not None:
                events.append(event)
        last = self._dispatch()
        if last is not None:
            events.append(last)
        return events

    def _line(self, raw: bytes) -> Event | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadStream("text that is not UTF-8") from None
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._name = value
        elif field == "error":
            self._error.append(value)
        return None

    def _dispatch(self) -> Event | None:
        name, data, error = self._name, self._data, self._error
        self._name, self._data, self._error = "", [], []
        if error:
            return Event("error", "\n".join(error))
        if not data:
            return None
        return Event(name or "message", "\n".join(data))


def _line_end(buffer: bytearray, start: int) -> int:
    """The index of the first CR or LF at or after `start`, or -1."""
    lf = buffer.find(b"\n", start)
    cr = buffer.find(b"\r", start, lf if lf >= 0 else len(buffer))
    return cr if cr >= 0 else lf


def parse(body: bytes, chunk: int = 0) -> list[Event]:
    """Every event in a whole body (fed `chunk` bytes at a time if given): for the tests."""
    decoder = SSEDecoder()
    events: list[Event] = []
    step = chunk or max(1, len(body))
    for n in range(0, len(body), step):
        events += decoder.feed(body[n : n + step])
    return events + decoder.close()
