"""How a run is asked to behave, and what it reports at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.results import Result
from pipeline.store.database import Counts


@dataclass
class Options:
    jobs: int = 0  # 0: the server's slot count
    redo: bool = False
    retries: int = 3  # further attempts after the first, for each model call
    down_wait: float = 30.0  # how long a backend may be unreachable mid-run before we stop
    busy_wait: float = 300.0  # how long to keep retrying "busy"/"loading" answers
    dry_run: bool = False  # show what would happen; change no file and finish no item
    backoff: float = 0.5
    progress: bool = False
    on_error: Callable[[Result], None] | None = None  # a per-item failure, for stderr
    on_note: Callable[[Result], None] | None = None  # a file skipped for a reason
    on_info: Callable[[str], None] | None = None


@dataclass
class Summary:
    run_id: int
    counts: Counts
    seconds: float
    exit_code: int
    stopped: str | None = None  # why the run ended early: a signal, "backend", "unable", "usage"
    error: str | None = None  # with "unable": why the backend cannot run this recipe
    # A pool of servers: the model calls each one answered in this run, by URL.
    backends: dict[str, int] = field(default_factory=dict)
