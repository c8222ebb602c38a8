"""One row of `metrics.parquet` per round, built from what the driver saw and what the chain holds.

`RoundTiming` collects the driver's wall-clock marks of one round (opened, dispatched, the pools'
training time and send time, payload bytes, coordinates clipped into fixed point); `round_row`
turns a closed round's chain result, its timing, the evaluation of the new model and the accounts
into a `RoundRow`. The time split is: training (the slowest pool's training), aggregation (what
the validator spent aggregating), consensus (from the last update sent to the round's close, less
aggregation), and waiting (the rest of the round).

Every row also carries the run's `RunColumns` (run id, data, model, strategy, attack as resolved),
and `METRICS_SCHEMA` types every column, empty lists included, so the metrics of any runs
concatenate with pyarrow (`pa.concat_tables`). `round_notes` is what the terminal says about a
round that lost clients. Pure: every input is an argument.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from fedray.config import RunConfig
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
    clipped_coordinates: int = 0  # update coordinates clipped into the fixed-point range

    def pool_report(
        self, train_s: float, sent_at: float, payload_bytes: int, copies: int, clipped: int = 0
    ) -> None:
        """Fold one pool's answer in (`copies`: how many ingresses got its payloads)."""
        self.train_s = max(self.train_s, train_s)
        self.sent_wall = max(self.sent_wall, sent_at)
        self.payload_bytes += payload_bytes * max(1, copies)
        self.clipped_coordinates += clipped


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
    global_model_hash: str  # hex digest of the round's new global model (int32 fixed point)
    missed_clients: list[int]  # selected clients the round included no update from
    skipped_clients: list[int]  # ... of which those that declared the miss (a `skip`)
    clipped_coordinates: int  # update coordinates clipped into the fixed-point range

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunColumns:
    """What a run was, as resolved, repeated on each of its rows so concatenated runs stay
    tellable apart (`strategy_params` and `attack_params` as canonical JSON)."""

    run_id: str
    name: str
    seed: int
    data: str
    partition: str
    alpha: float
    model: str
    clients: int
    strategy: str
    strategy_params: str
    attack: str
    attack_fraction: float
    attack_params: str

    @staticmethod
    def of(cfg: RunConfig, run_id: str) -> RunColumns:
        return RunColumns(
            run_id=run_id,
            name=cfg.name,
            seed=cfg.seed,
            data=cfg.data.name,
            partition=cfg.data.partition,
            alpha=float(cfg.data.alpha),
            model=cfg.model.name,
            clients=cfg.clients,
            strategy=cfg.strategy.name,
            strategy_params=json.dumps(dict(cfg.strategy.params), sort_keys=True),
            attack=cfg.attack.name,
            attack_fraction=float(cfg.attack.fraction),
            attack_params=json.dumps(dict(cfg.attack.params), sort_keys=True),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_ARROW = {
    "int": pa.int64(),
    "float": pa.float64(),
    "str": pa.string(),
    "bool": pa.bool_(),
    "list[int]": pa.list_(pa.int64()),
    "list[bool]": pa.list_(pa.bool_()),
}
METRICS_SCHEMA = pa.schema(
    [
        pa.field(f.name, _ARROW[str(f.type)], nullable=False)
        for cls in (RunColumns, RoundRow)
        for f in dataclasses.fields(cls)
    ]
)
"""Every metrics.parquet column and its type: run columns first, then the round's."""


def metrics_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """`rows` (run columns and round row merged) as a table of `METRICS_SCHEMA`."""
    return pa.Table.from_pylist([dict(r) for r in rows], schema=METRICS_SCHEMA)


def client_names(indices: Sequence[int]) -> str:
    return ", ".join(f"client-{i}" for i in indices)


def round_notes(row: RoundRow, timeout_s: float) -> list[str]:
    """What the terminal says about a round beyond the progress bar: closing on the deadline and
    who missed it, declared misses, clipped coordinates."""
    notes = []
    late = [i for i in row.missed_clients if i not in row.skipped_clients]
    if row.close_reason == "deadline":
        who = f": no update from {client_names(late)}" if late else ""
        notes.append(
            f"round {row.round} closed on its deadline (height {row.closed_at}, at least "
            f"{timeout_s:g} s of block time after it opened){who}"
        )
    if row.skipped_clients:
        notes.append(
            f"round {row.round}: {client_names(row.skipped_clients)} declared a missed update"
        )
    if row.clipped_coordinates:
        notes.append(
            f"round {row.round}: {row.clipped_coordinates} update coordinates clipped into the "
            "fixed-point range |x| < 128"
        )
    return notes


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
    index = {k: i for i, k in enumerate(client_keys)}
    round_s = context.closed_wall - timing.opened_wall
    consensus_s = (
        max(0.0, context.closed_wall - timing.sent_wall - aggregation_s)
        if timing.sent_wall
        else 0.0
    )
    waiting_s = max(0.0, round_s - timing.train_s - consensus_s - aggregation_s)
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
        global_model_hash=result.global_after.hex(),
        missed_clients=sorted(index[k] for k in result.missed if k in index),
        skipped_clients=sorted(index[k] for k in result.skipped if k in index),
        clipped_coordinates=timing.clipped_coordinates,
    )
