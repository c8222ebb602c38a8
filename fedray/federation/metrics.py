"""One row of `metrics.parquet` per round, built from what the driver saw and what the chain holds.

`RoundTiming` collects the driver's wall-clock marks of one round (opened, dispatched, the pools'
training time and send time, payload bytes); `round_row` turns a closed round's chain result, its
timing, the evaluation of the new model and the accounts into a `RoundRow`. The time split is:
training (the slowest pool's training), aggregation (what the validator spent aggregating),
consensus (from the last update sent to the round's close, less aggregation), and waiting (the rest
of the round). Pure: every input is an argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fedray.learning.training import Metrics
from fedray.node.views import AccountInfo, EconomyInfo, RoundResultView


@dataclass
class RoundTiming:
    """Wall-clock marks of one round, as the driver sees them (seconds since the epoch)."""

    opened_wall: float
    dispatched_wall: float = 0.0
    train_s: float = 0.0  # the slowest pool's training time
    sent_wall: float = 0.0  # when the last pool sent its updates
    payload_bytes: int = 0  # update bytes sent, counted once per ingress that received them

    def pool_report(self, train_s: float, sent_at: float, payload_bytes: int, copies: int) -> None:
        """Fold one pool's answer in (`copies`: how many ingresses got its payloads)."""
        self.train_s = max(self.train_s, train_s)
        self.sent_wall = max(self.sent_wall, sent_at)
        self.payload_bytes += payload_bytes * max(1, copies)


@dataclass(frozen=True)
class RoundRow:
    round: int
    accuracy: float
    loss: float
    round_seconds: float
    train_seconds: float
    consensus_seconds: float
    aggregation_seconds: float
    waiting_seconds: float
    tx_count: int
    cumulative_txs: int
    bytes_moved: int
    selected: int
    included: int
    accepted: int
    clipped: int
    close_reason: str
    opened_at: int
    closed_at: int
    height: int
    wall_seconds: float
    client_balances: list[int]  # per client, in client index order
    client_stakes: list[int]
    client_jailed: list[bool]
    minted_total: int
    burned_total: int
    penalties_total: int
    slashed_clients: list[int]  # client indices with a penalty so far

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RoundContext:
    """What the row needs besides the round itself: the run's clock and totals so far."""

    closed_wall: float
    start_wall: float
    height: int
    previous_txs: int
    model_bytes: int
    pools: int


def round_row(
    result: RoundResultView,
    timing: RoundTiming,
    metrics: Metrics,
    aggregation_s: float,
    context: RoundContext,
    client_keys: Sequence[bytes],
    accounts: Mapping[bytes, AccountInfo],
    economy: EconomyInfo,
) -> RoundRow:
    round_s = context.closed_wall - timing.opened_wall
    consensus_s = (
        max(0.0, context.closed_wall - timing.sent_wall - aggregation_s)
        if timing.sent_wall
        else 0.0
    )
    waiting_s = max(0.0, round_s - timing.train_s - consensus_s - aggregation_s)
    index = {k: i for i, k in enumerate(client_keys)}
    return RoundRow(
        round=result.round,
        accuracy=metrics.accuracy,
        loss=metrics.loss,
        round_seconds=round_s,
        train_seconds=timing.train_s,
        consensus_seconds=consensus_s,
        aggregation_seconds=aggregation_s,
        waiting_seconds=waiting_s,
        tx_count=result.included,
        cumulative_txs=context.previous_txs + result.included,
        bytes_moved=timing.payload_bytes + context.model_bytes * context.pools,
        selected=result.selected,
        included=result.included,
        accepted=result.accepted,
        clipped=result.clipped,
        close_reason=result.reason,
        opened_at=result.opened_at,
        closed_at=result.closed_at,
        height=context.height,
        wall_seconds=context.closed_wall - context.start_wall,
        client_balances=[accounts[k].balance for k in client_keys],
        client_stakes=[accounts[k].stake for k in client_keys],
        client_jailed=[accounts[k].excluded for k in client_keys],
        minted_total=economy.minted,
        burned_total=economy.burned,
        penalties_total=len(economy.penalties),
        slashed_clients=sorted(
            {index[p.offender] for p in economy.penalties if p.offender in index}
        ),
    )
