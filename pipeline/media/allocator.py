"""Big pixel buffers go back to the system as soon as they are freed (Linux, glibc).

glibc serves a freed block again from the thread's own heap, and raises its mmap threshold
to the largest block freed so far (up to 32 MB): after a few photos each worker thread
keeps its own tens of MB of canvases and bands, and the process's RSS becomes the sum of
every thread's worst photo, not what the pixel budget lets decode at once. A fixed 8 MB
threshold maps each bigger buffer (HEIC canvases, whole decodes) on its own and unmaps it on
free, while a drafted 24 MP JPEG (6 MB) stays on the heap and costs no page faults. Measured
with bench big-photos: 211-226 MB -> 167-170 MB at -j 1, 308-310 -> 178-184 MB at -j 4, in
the same time (1 MB saved ~10 MB more but made bench media's JPEGs ~5% slower).
macOS and Windows allocators already hand big blocks back; musl has no such threshold.
"""

from __future__ import annotations

import ctypes
import platform
import threading

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_THRESHOLD = 8 * 1024 * 1024

_done = threading.Lock()
_applied: bool | None = None


def return_big_buffers() -> bool:
    """Set glibc's mmap threshold once per process; False where there is no glibc."""
    global _applied
    with _done:
        if _applied is None:
            _applied = False
            if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
                try:
                    mallopt = ctypes.CDLL(None).mallopt
                    _applied = bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
                except (OSError, AttributeError):
                    pass
    return _applied
