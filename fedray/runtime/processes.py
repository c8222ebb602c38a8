"""The processes an embedded Ray instance starts, and making sure none outlives `fedray run`.

`ray.init` starts the head processes (GCS, raylet, agents) as children of the calling process and
they start the workers; `ray.shutdown` signals them but does not wait. `track_start` records which
children a start created, and `shutdown_ray` disconnects, waits a grace period for those processes
and their descendants to exit, and kills what is left. Other children of the process are never
touched. Linux `/proc` only; elsewhere nothing is known and only `ray.shutdown` runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def track_start() -> Iterator[None]:
    """Record the children the enclosed `ray.init` starts (also when it fails halfway)."""
    before = _children(os.getpid())
    try:
        yield
    finally:
        _RAY_ROOTS.update(_children(os.getpid()) - before)


_RAY_ROOTS: set[int] = set()  # the processes `ray.init` started in this process


def shutdown_ray(grace_s: float = 10.0) -> None:
    """Disconnect, and stop every process an embedded instance started. Ray signals its workers
    but does not wait for them, so this waits up to `grace_s` for every process `init_ray`
    started and their descendants (the workers) to exit, and kills what is left: no Ray process
    outlives the command. Other children of this process are never touched."""
    import ray

    started = set(_RAY_ROOTS) | _descendants(_RAY_ROOTS)
    _RAY_ROOTS.clear()
    ray.shutdown()
    wait_or_kill(started, grace_s)


def wait_or_kill(pids: set[int], grace_s: float) -> list[int]:
    """Wait up to `grace_s` for `pids` to exit, then SIGKILL the ones left; returns those."""
    deadline = time.monotonic() + grace_s
    while True:
        alive = [pid for pid in sorted(pids) if _alive(pid)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return alive


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name (state, ppid, ...); None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (Linux /proc; elsewhere none are known)."""
    parents: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            fields = _stat(int(entry.name)) if entry.name.isdigit() else None
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    return parents


def _children(pid: int) -> set[int]:
    return {child for child, parent in _parents().items() if parent == pid}


def _descendants(roots: set[int]) -> set[int]:
    """Every process below `roots`."""
    parents = _parents()
    found: set[int] = set()
    frontier = set(roots)
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found
