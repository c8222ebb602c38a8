"""Is a proposed block's time close to this validator's clock? Proposer-based timestamps, simplified.

The core's header rule (time grows by 1 ms to `max_block_time_step_ms` per block) is deterministic,
so it holds on replay and bounds time forever, but it lets a Byzantine proposer run the chain's
clock ahead of real time by up to a step per block. An honest validator therefore also judges a
*fresh* proposal against its own clock, as CometBFT's PBTS does, and prevotes nil on a block that is
more than `precision_ms` ahead of it, or more than `max_lag_ms` behind it while the step would have
allowed a later time (after a long halt the chain's time legitimately lags and catches up at one step
per block). With more than 2/3 of the power honest and clocks within `precision_ms` of each other,
every committed block's time is then within the precision of some honest clock.

Only `LedgerApp.process_proposal` applies this; a block decided without our prevote (catch-up,
`fedray chain verify`) is judged by the deterministic rule alone, since its time was judged when it
was fresh. Deliberately ignored: CometBFT's per-round growth of the message delay (re-proposals of
a locked block keep the verdict cached for their hash) and clock synchronization itself (NTP's job).
"""

from __future__ import annotations

from dataclasses import dataclass

from fedray.errors import ConfigError


@dataclass(frozen=True)
class Timeliness:
    precision_ms: int = 500  # how far honest clocks may disagree
    max_lag_ms: int = 60_000  # message delay plus rounds: how old a fresh proposal's time may be

    def __post_init__(self) -> None:
        if self.precision_ms < 0 or self.max_lag_ms < 0:
            raise ConfigError("timeliness bounds must not be negative")

    def refusal(
        self, block_time: int, last_block_time: int, max_step_ms: int, now_ms: int
    ) -> str | None:
        """Why a fresh proposal with `block_time` is untimely at local time `now_ms`, or None."""
        if block_time > now_ms + self.precision_ms:
            return f"block time {block_time} is {block_time - now_ms} ms ahead of the local clock"
        latest_allowed = last_block_time + max_step_ms
        if block_time < now_ms - self.max_lag_ms and block_time < latest_allowed:
            return f"block time {block_time} is {now_ms - block_time} ms behind the local clock"
        return None
