"""Connecting to Ray: an embedded local instance by default, or an existing cluster.

A local instance keeps all its traffic on loopback: `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` must be set
before `ray.init` (Ray then binds 127.0.0.1 instead of the machine's external address), and the
dashboard is off. Only a user-given address (`--address`, `runtime.address` or `RAY_ADDRESS`) reaches
elsewhere. A start that fails halfway is shut down before the error propagates, so it leaves no Ray
process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


def cluster_address(explicit: str | None) -> str | None:
    return explicit or os.environ.get("RAY_ADDRESS") or None


def init_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    object_store_mb: int = 256,
    **kwargs: Any,
) -> bool:
    """Connect to `address` (or RAY_ADDRESS), else start an embedded loopback-only instance.
    Returns True when this call started Ray (the caller then shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    target = cluster_address(address)
    if target:
        ray.init(address=target, **kwargs)
        return True
    for key, value in LOCAL_ENV.items():
        os.environ[key] = value
    before = _children(os.getpid())
    try:
        ray.init(
            num_cpus=num_cpus,
            object_store_memory=object_store_mb * 1024 * 1024,
            include_dashboard=False,
            **kwargs,
        )
    except BaseException:
        _RAY_ROOTS.update(_children(os.getpid()) - before)
        shutdown_ray()  # a start that failed halfway leaves no process behind
        raise
    _RAY_ROOTS.update(_children(os.getpid()) - before)  # Ray's head processes
    return True


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
