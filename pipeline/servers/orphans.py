"""Nothing pipe starts outlives it, however pipe ends (even SIGKILL, which runs none of its code).

Servers and one-shot model programs run in process groups of their own. A watchdog process,
started once per pipe, reads a pipe whose write end only pipe holds (close-on-exec: no other
child inherits it); pipe writes each group it starts and each it has stopped. When the pipe
closes (pipe exited, whatever the cause) the watchdog stops the groups still listed: SIGTERM,
then SIGKILL. A group also holds what the child starts (a llamafile that `sh` runs, as an APE
file without binfmt_misc is), where a parent-death signal reaches only the direct child, is
tied to the thread that started it, and needs `preexec_fn`, unsafe while threads run.

Temporary folders carry pipe's pid (`pipe-server-<pid>-…`): the first use of a prefix in a
process removes the folders of pipes that are no longer running.

    orphans.arm()                         # before starting: no window where pipe could die
    proc = subprocess.Popen(..., start_new_session=True)
    orphans.guard(proc.pid)
    ...                                   # stop the group, then
    orphans.release(proc.pid)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

STOP_SECONDS = 5.0  # the watchdog's wait between SIGTERM and SIGKILL

# Run as `python -I -S -c`: no site, no user paths, nothing of pipe's imported.
_WATCHDOG = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
for line in sys.stdin.buffer:
    sign, number = line[:1], line[1:].strip()
    if number.isdigit():
        (groups.add if sign == b"+" else groups.discard)(int(number))
def send(sig):
    reached = False
    for group in groups:
        try:
            os.killpg(group, sig)
            reached = True
        except OSError:
            pass
    return reached
deadline = time.monotonic() + float(sys.argv[1])
if send(signal.SIGTERM):
    while send(0) and time.monotonic() < deadline:
        time.sleep(0.05)
    send(signal.SIGKILL)
"""

_lock = threading.Lock()
_watchdog: subprocess.Popen[bytes] | None = None
_cleaned: set[str] = set()


def arm() -> None:
    """Start the watchdog if it is not running (call before starting a child)."""
    global _watchdog
    with _lock:
        if _watchdog is not None and _watchdog.poll() is None:
            return
        try:
            _watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(STOP_SECONDS)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,  # never a pipe a caller waits to see closed
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C and a kill of pipe's group leave it alone
            )
        except OSError:  # no interpreter to run it (a frozen pipe): pipe's own stop still works
            _watchdog = None


def guard(group: int) -> None:
    """Until `release(group)`, the process group `group` is stopped when pipe dies."""
    arm()
    _tell(f"+{group}\n")


def release(group: int) -> None:
    """pipe has stopped `group` itself (or it ended): the watchdog forgets it."""
    _tell(f"-{group}\n")


def _tell(line: str) -> None:
    with _lock:
        if _watchdog is None or _watchdog.stdin is None:
            return
        with contextlib.suppress(OSError):  # killed by someone: nothing left to tell
            _watchdog.stdin.write(line.encode())
            _watchdog.stdin.flush()


def owned_prefix(prefix: str) -> str:
    """`prefix` with this pipe's pid, for a temporary folder's name. The first call for a
    prefix removes the folders that pipes no longer running left (killed before cleaning)."""
    with _lock:
        first = prefix not in _cleaned
        _cleaned.add(prefix)
    if first:
        clean(prefix)
    return f"{prefix}{os.getpid()}-"


def clean(prefix: str) -> None:
    """Remove `<prefix><pid>-…` folders of ours in the temporary folder whose pid is dead."""
    marked = re.compile(re.escape(prefix) + r"(\d+)-.*")
    with contextlib.suppress(OSError):
        for path in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
            found = marked.fullmatch(path.name)
            if not found or _running(int(found.group(1))):
                continue
            with contextlib.suppress(OSError):
                info = path.lstat()
                if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
                    shutil.rmtree(path, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: running
        return True
    return True
