"""A validator's consensus timers, and the one it lengthens: round 0's propose timeout while the
open round waits for its clients' updates.

While the open round waits for its selected clients' updates, the proposer holds its block for
them (up to `round_gather_s`, validator.py), so that a round's updates share one block instead of
an empty block, and its full consensus, being spent first. A peer's propose timeout must not end
that hold: on a loaded machine the updates took longer than a propose timeout to arrive, peers
prevoted nil or the proposer gave up, and every round cost an extra block (measured: 2 blocks and
about 1.8 s a round at 10 clients per round beside two busy processes). So at a height whose last
committed state has an open round still missing updates, round 0's propose timeout is
`round_gather_s` longer: every honest validator reads that from the same committed state, and the
proposer, which asks for its block `timeout_commit_s` into the height and holds it at most
`round_gather_s`, proposes within the longer timeout (`timeout_propose_s` exceeds
`timeout_commit_s`). A silent proposer costs at most `round_gather_s` more at such a height; the
honest case loses nothing, since a timeout only fires when the proposal is late.

Only liveness depends on when a timeout fires, never safety (votes and locks are unchanged).
Timeouts of later rounds and of other steps fire as the engine scheduled them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fedray.consensus.messages import ScheduleTimeout, TimeoutFired
from fedray.consensus.signer import STEP_PROPOSE
from fedray.core.state import State


def awaiting_updates(state: State) -> bool:
    """Whether `state` has an open round still missing some selected client's answer."""
    rs = state.section("rounds")
    return bool(rs.open) and rs.submitted() < len(rs.selected)


class Timers:
    """Schedules the engine's timeouts on the running loop; `deliver` hands one to the engine.
    `awaiting()`: whether the last committed state has an open round still missing updates."""

    def __init__(
        self,
        gather_s: float,
        awaiting: Callable[[], bool],
        deliver: Callable[[TimeoutFired], None],
    ) -> None:
        self.gather_s = gather_s
        self.awaiting = awaiting
        self.deliver = deliver

    def delay_s(self, t: ScheduleTimeout) -> float:
        """When `t` fires, in seconds from now."""
        delay = t.duration_ms / 1000
        if t.step == STEP_PROPOSE and t.round == 0 and self.gather_s > 0 and self.awaiting():
            return delay + self.gather_s
        return delay

    def schedule(self, t: ScheduleTimeout) -> None:
        fired = TimeoutFired(t.height, t.round, t.step)
        asyncio.get_running_loop().call_later(self.delay_s(t), self.deliver, fired)
