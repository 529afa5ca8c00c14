"""The map engine: a run loop over items (loop.py), the work on one item (work.py), a retry
policy (retry.py), server slots (slots.py) and the run's bookkeeping in the store
(ledger.py)."""

from pipeline.engine.items import STDIN_PATH, Item, file_items, stdin_item
from pipeline.engine.loop import Runner
from pipeline.engine.options import Options, Summary
from pipeline.engine.retry import RetryPolicy
from pipeline.engine.slots import SlotGate

__all__ = [
    "STDIN_PATH",
    "Item",
    "Options",
    "RetryPolicy",
    "Runner",
    "SlotGate",
    "Summary",
    "file_items",
    "stdin_item",
]
