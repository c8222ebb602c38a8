"""Building and checking proposals off a validator's event loop, and the driver that lets the
validator take those requests over (`ShellDriver`).

`Execution` runs the application's `prepare_proposal` and `process_proposal` (where a block executes
and a round-closing block aggregates) in one thread, and hands each answer back to the loop as the
engine's next event, so votes, timeouts and catch-up keep flowing meanwhile. The engine drops an
answer that has gone stale (another round or height).

A propose timeout that fires while a build or check is in flight waits for its answer, as it did
when they ran on the loop: it would otherwise have the node prevote nil on every block that takes
longer than the timeout to execute, and a loaded machine would fail round after round.

Ignores: which requests go here (the validator shell's `_intercept`), blocks executed at commit
(`LedgerApp.finalize_block`, on the loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fedray.consensus.driver import Driver
from fedray.consensus.messages import Event, OutboxItem, TimeoutFired
from fedray.consensus.signer import STEP_PROPOSE


class Execution:
    """One execution thread and the propose timeouts waiting for it (see module docstring)."""

    def __init__(
        self, handle: Callable[[Event], None], fail: Callable[[BaseException], None]
    ) -> None:
        self.handle = handle  # feeds an event to the engine, on the loop
        self.fail = fail  # an error in the thread stops the node, as on the loop
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="fedray-execute")
        self.in_flight = 0
        self._deferred: list[TimeoutFired] = []

    def timeout(self, fired: TimeoutFired) -> None:
        """A timeout the loop's timer fired: to the engine now, or after the answer in flight."""
        if fired.step == STEP_PROPOSE and self.in_flight:
            self._deferred.append(fired)
        else:
            self.handle(fired)

    async def run(self, answer: Callable[[Any], Event], fn: Callable[..., Any], *args: Any) -> None:
        """`fn(*args)` in the thread; then `answer(result)` to the engine, then the propose
        timeouts that fired meanwhile (the engine ignores those of a step it has left)."""
        self.in_flight += 1
        try:
            result = await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
            self.handle(answer(result))
        except Exception as exc:
            self.fail(exc)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                deferred, self._deferred = self._deferred, []
                for fired in deferred:
                    self.handle(fired)

    def close(self) -> None:
        """Wait for the build or check in progress (the stores close next); drop queued ones."""
        self.pool.shutdown(wait=True, cancel_futures=True)


class ShellDriver(Driver):
    """The reference driver, letting the node take over some outbox items (answered later)."""

    def __init__(self, *args: Any, intercept: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intercept = intercept

    def _apply(self, item: OutboxItem, queue: Any) -> None:
        if not self.intercept(item):
            super()._apply(item, queue)
