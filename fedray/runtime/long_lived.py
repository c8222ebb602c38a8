"""Keeps CPython's cyclic garbage collector off what a validator's process keeps for good.

A validator's committed state only grows while a run goes on: each closed round keeps its
updates' records and verdicts, the blob index a slot per payload (about 300 objects a round at
100 updates). A full collection walks every tracked object, so its cost grows with the run: the
validators' CPU per round rose from 0.29 s to 0.37 s between rounds 10-40 and 370-399 of the
bench task, and with the collector off it rose only to 0.33 s (`experiments/round_growth.py`).

`FreezeCommitted` collects once every `every` commits and moves what survived into the permanent
generation (`gc.freeze`), which later collections skip. A frozen object that dies is still freed
by reference counting; only a reference cycle among frozen objects would outlive its use, and a
validator makes next to none (with the collector off for 400 rounds its memory grew by the same
as with it on). Each collection walks only what was made since the last freeze.

Only in a validator's own Ray process: in-process validators (the tests' harnesses) share their
process with a caller whose objects are not ours to freeze.
"""

from __future__ import annotations

import gc

FREEZE_EVERY = 64  # commits between freezes: a collection of what 64 blocks made, then a freeze


class FreezeCommitted:
    """Collect, then freeze, after every `every`-th commit (when `enabled`)."""

    def __init__(self, enabled: bool, every: int = FREEZE_EVERY) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, not {every}")
        self.enabled = enabled
        self.every = every
        self.freezes = 0

    def committed(self, height: int) -> None:
        """After the commit of `height`: collect and freeze on every `every`-th height."""
        if self.enabled and height % self.every == 0:
            gc.collect()
            gc.freeze()
            self.freezes += 1
