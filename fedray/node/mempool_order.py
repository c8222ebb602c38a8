"""The mempool's orders, as pure functions of its contents: the proposal order (by sender and
nonce: every sender's first, in sender key order, then every sender's second, ...), the shortest
prefix of that order that fills the executed window's budget, and the packing of a block by its
count, byte and gas limits.

A ready transaction's place in the proposal order is its *rank key*: (its index among its
sender's ready transactions, its sender). Nothing here executes a transaction or reads the state.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from fedray.core.state import Params
from fedray.core.transition import CheckedTx

RankKey = tuple[int, bytes]
"""(index among the sender's ready transactions, sender): the proposal order sorts by it."""


def tx_cost(checked: CheckedTx, params: Params) -> int:
    """A transaction's gas, which needs no state: its kind's base gas plus its bytes."""
    return checked.spec.base_gas + params.gas_per_byte * checked.size


@dataclass(frozen=True)
class Budget:
    """What the executed window holds at least (when the pool has that much): `blocks` blocks by
    whichever of the count, byte and gas limits a prefix reaches first."""

    txs: int
    nbytes: int
    gas: int

    @staticmethod
    def of(params: Params, blocks: int) -> Budget:
        return Budget(
            blocks * params.max_block_txs,
            blocks * params.max_block_bytes,
            blocks * params.block_gas_limit,
        )

    def reached(self, txs: int, nbytes: int, gas: int) -> bool:
        return txs >= self.txs or nbytes >= self.nbytes or gas >= self.gas


@dataclass(frozen=True)
class Prefix:
    """The shortest prefix of the proposal order that reaches a budget."""

    taken: dict[bytes, int]  # sender -> how many of its ready transactions (its first ones)
    frontier: RankKey | None  # rank key of the prefix's last transaction; None: all fit
    txs: int
    nbytes: int
    gas: int


def rank_prefix(
    senders: Sequence[bytes],
    chains: Mapping[bytes, Sequence[CheckedTx]],
    params: Params,
    budget: Budget,
    available: Callable[[bytes], bool] | None = None,
) -> Prefix:
    """Walk the proposal order over `chains` (each sender's ready transactions in nonce order;
    `senders` their keys, sorted) until `budget` is reached, passing over a transaction
    `available` refuses (its payload is not here: no proposal takes it) and its sender's later
    ones. Work is proportional to the prefix: a rank's pass stops at the budget and the next
    pass visits only the senders with more."""
    taken: dict[bytes, int] = {}
    txs = nbytes = gas = 0
    active: Sequence[bytes] = senders
    rank = 0
    while active:
        longer: list[bytes] = []
        for sender in active:
            chain = chains[sender]
            checked = chain[rank]
            if available is not None and not available(checked.stx.raw):
                continue
            taken[sender] = rank + 1
            txs, nbytes, gas = txs + 1, nbytes + checked.size, gas + tx_cost(checked, params)
            if budget.reached(txs, nbytes, gas):
                return Prefix(taken, (rank, sender), txs, nbytes, gas)
            if len(chain) > rank + 1:
                longer.append(sender)
        active, rank = longer, rank + 1
    return Prefix(taken, None, txs, nbytes, gas)


def proposal_order(
    windows: Iterable[Sequence[CheckedTx]], available: Callable[[bytes], bool] | None = None
) -> list[bytes]:
    """Raw transactions by sender and nonce: each sender's first (`windows`: each sender's
    transactions in nonce order, senders in key order), then each one's second, and so on. A
    transaction `available` refuses (its payload is not here) leaves out its sender's later
    nonces too."""
    queues: list[list[bytes]] = []
    for window in windows:
        raws: list[bytes] = []
        for checked in window:
            if available is not None and not available(checked.stx.raw):
                break
            raws.append(checked.stx.raw)
        queues.append(raws)
    ranks = itertools.zip_longest(*queues)
    return [raw for rank in ranks for raw in rank if raw is not None]


def pack(
    candidates: Iterable[bytes], lookup: Callable[[bytes], CheckedTx], params: Params
) -> list[bytes]:
    """The candidates (raw transactions in proposal order) packed into a block's count, byte
    and gas limits: one that does not fit is left out with its sender's later nonces, and
    packing goes on with the others."""
    out: list[bytes] = []
    gas_total = used_bytes = 0
    skipped: set[bytes] = set()
    for raw in candidates:
        if len(out) >= params.max_block_txs:
            break
        checked = lookup(raw)
        sender = checked.stx.tx.sender
        if sender in skipped:
            continue
        gas = tx_cost(checked, params)
        if (
            used_bytes + len(raw) > params.max_block_bytes
            or gas_total + gas > params.block_gas_limit
        ):
            skipped.add(sender)
            continue
        out.append(raw)
        gas_total += gas
        used_bytes += len(raw)
    return out
