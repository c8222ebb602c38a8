"""A validator's process freezes what it keeps out of the cyclic collector every k commits, after
collecting what died: frozen objects are skipped by later collections, dead ones are not frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from fedray.runtime.long_lived import FreezeCommitted


class Node:
    """A tracked object that may sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    """No automatic collection during a test (it would free the cycle before the freezer does),
    nothing left frozen after it (the test process's objects are not ours to keep)."""
    enabled = gc.isenabled()
    gc.disable()
    gc.unfreeze()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


def test_every_kth_commit_freezes_what_lives_and_collects_what_died_first() -> None:
    freezer = FreezeCommitted(enabled=True, every=4)
    kept = [Node() for _ in range(100)]
    dead = Node()
    dead.other = dead  # a cycle: only the collector frees it
    gone = weakref.ref(dead)
    del dead
    for height in (1, 2, 3):
        freezer.committed(height)
    assert gc.get_freeze_count() == 0 and gone() is not None and freezer.freezes == 0
    freezer.committed(4)
    assert gone() is None  # collected before the freeze, never frozen
    assert gc.get_freeze_count() >= len(kept) and freezer.freezes == 1


def test_a_freezer_outside_a_validator_process_leaves_the_collector_alone() -> None:
    freezer = FreezeCommitted(enabled=False, every=1)
    for height in range(1, 5):
        freezer.committed(height)
    assert gc.get_freeze_count() == 0 and freezer.freezes == 0


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FreezeCommitted(enabled=True, every=0)
