"""The store's `bench` part: every figure kept with its time, model and settings, the
backend's name without credentials, and the history newest-limited, oldest first."""

from __future__ import annotations

from pathlib import Path

from pipeline.bench.figures import BIOTICS, SD_YOU, Figures
from pipeline.store.database import Store


def figures(at: str, backend: str = "http://127.0.0.1:5001", **extra: object) -> Figures:
    base: dict[str, object] = {
        "test": BIOTICS,
        "backend": backend,
        "kind": "koboldcpp",
        "model": "gemma-7b-it.Q4_K_M",
        "seconds": 19.0,
        "at": at,
        "context_size": 8024,
        "gpu_layers": 18,
        "runs": 3,
        "prompt_tokens": 1125,
        "prompt_per_second": 80.5,
        "overhead_ms": 3.25,
        "settings": {"repeat": 3, "persona": "Librarian"},
    }
    return Figures(**{**base, **extra})  # type: ignore[arg-type]


def test_figures_come_back_as_they_were_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    kept = [
        figures("2026-12-01T10:00:00+00:00"),
        figures("2026-12-01T10:01:00+00:00", test=SD_YOU, seconds=50.0, width=512, height=512,
                steps=20, prompt_tokens=None, prompt_per_second=None, overhead_ms=None),
    ]  # fmt: skip
    for f in kept:
        store.bench.add(f)
    store.close()
    assert Store(tmp_path / "s.db").bench.history() == kept


def test_history_is_the_newest_oldest_first_and_filtered_by_backend(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    for day in (3, 1, 2):
        store.bench.add(figures(f"2026-12-0{day}T00:00:00+00:00"))
    store.bench.add(figures("2026-12-04T00:00:00+00:00", backend="http://gpu1:8080"))
    assert [f.at[:10] for f in store.bench.history(limit=2)] == ["2026-12-03", "2026-12-04"]
    mine = store.bench.history("http://127.0.0.1:5001")
    assert [f.at[:10] for f in mine] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    assert store.bench.history("http://nowhere:1") == []


def test_a_backend_s_password_is_never_stored(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.bench.add(figures("2026-12-01T00:00:00+00:00", backend="http://me:hunter2@gpu1:8080"))
    raw = (tmp_path / "s.db").read_bytes() + (tmp_path / "s.db-wal").read_bytes()
    assert b"hunter2" not in raw
    assert "hunter2" not in store.bench.history()[0].backend
