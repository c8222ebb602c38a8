"""Observers of a validator's commits: long polls (`wait_for_height`) and push subscribers, fed by
the validator after every commit. Over Ray the validator offers no `subscribe`
(`faces.VALIDATOR_METHODS`): a hardened process resolves no foreign actor class to call.

A subscriber is an object with an async method (or a fedray actor handle); it gets one event dict
per commit, in height order (one queue per subscriber), and is dropped on its first failure (a dead
subscriber must not grow a queue forever).

Deliberately ignored: replaying missed events to a subscriber that reconnects (it asks `status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class CommitWatch:
    def __init__(self) -> None:
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._queues: list[asyncio.Queue[dict[str, Any]]] = []

    def committed(self, height: int, event: Callable[[], dict[str, Any]]) -> None:
        """Wake waiters for `height` or below; queue `event()` for each subscriber."""
        for target, fut in self._waiters:
            if target <= height and not fut.done():
                fut.set_result(None)
        self._waiters = [(t, f) for t, f in self._waiters if not f.done()]
        if self._queues:
            payload = event()
            for queue in self._queues:
                queue.put_nowait(payload)

    async def wait(self, height: int, timeout_s: float) -> None:
        """Return when `committed(h >= height)` is called or `timeout_s` passes."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((height, fut))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(fut), timeout_s)

    def subscribe(self, target: Any, method: str) -> Coroutine[Any, Any, None]:
        """Register `target.<method>` now; run the returned coroutine as a task to deliver."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues.append(queue)
        return self._pump(getattr(target, method), queue)

    async def _pump(self, fn: Any, queue: asyncio.Queue[dict[str, Any]]) -> None:
        try:
            while True:
                event = await queue.get()
                if hasattr(fn, "remote"):
                    await asyncio.wrap_future(fn.remote(event).future())
                else:
                    await fn(event)
        except Exception as exc:
            log.warning("dropping subscriber %r: %s", fn, exc)
        finally:
            self._queues.remove(queue)

    def close(self) -> None:
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters = []
