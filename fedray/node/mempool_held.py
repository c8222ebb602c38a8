"""The mempool's held transactions, those whose nonce skips ahead of their sender's next one,
with the limits on holding them; `Rejection`, the mempool's record of a refusal, and the refusals
it decides without running a transaction.

Owns only the bookkeeping: when a held transaction's gap closes, and what then runs, is the
mempool's (`mempool.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fedray.core.state import Params
from fedray.core.transition import CheckedTx
from fedray.core.tx import SignedTx
from fedray.errors import FedrayError, NonceGapError, NonceReplayError, OversizedError

MAX_AHEAD = 64
"""Furthest a held transaction's nonce may be ahead of its sender's next one."""
MAX_HELD_PER_SENDER = 64


@dataclass(frozen=True)
class Rejection:
    tx_hash: bytes
    sender: bytes
    kind: str
    code: str
    message: str
    height: int  # committed height when it was rejected

    @staticmethod
    def of(stx: SignedTx | None, exc: FedrayError, height: int) -> Rejection:
        """The record of `stx` (None: bytes that do not decode) refused with `exc`."""
        return Rejection(
            stx.hash if stx else b"",
            stx.tx.sender if stx else b"",
            stx.tx.kind if stx else "",
            exc.code,
            str(exc),
            height,
        )


def replay_error(nonce: int, expected: int) -> NonceReplayError:
    """What execution would raise for `nonce` when the sender's next is `expected`."""
    return NonceReplayError(f"nonce {nonce} already used (next is {expected})")


def check_size(checked: CheckedTx, params: Params) -> None:
    """The one stateless rule that can change after admission (with the parameters)."""
    if checked.size > params.max_tx_bytes:
        raise OversizedError(
            f"transaction has {checked.size} bytes, limit is {params.max_tx_bytes}"
        )


class Held:
    """Transactions waiting behind a nonce gap, by sender and nonce, and by hash."""

    def __init__(self) -> None:
        self._by_sender: dict[bytes, dict[int, CheckedTx]] = {}  # sender -> nonce -> tx
        self.by_hash: dict[bytes, CheckedTx] = {}

    def __len__(self) -> int:
        return len(self.by_hash)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self.by_hash

    def senders(self) -> list[bytes]:
        return sorted(self._by_sender)

    def first(self, sender: bytes) -> int | None:
        """The lowest nonce held for `sender` (None: nothing held)."""
        held = self._by_sender.get(sender)
        return None if held is None else min(held)

    def hold(self, checked: CheckedTx, expected: int) -> None:
        """Hold `checked`, whose sender's next nonce is `expected`; raise past the limits or
        for a second transaction of a held nonce."""
        tx = checked.stx.tx
        held = self._by_sender.get(tx.sender, {})
        if tx.nonce - expected > MAX_AHEAD:
            raise NonceGapError(
                f"nonce {tx.nonce} is more than {MAX_AHEAD} ahead (next is {expected})"
            )
        if tx.nonce in held:
            raise NonceReplayError(f"nonce {tx.nonce} is already held for this sender")
        if len(held) >= MAX_HELD_PER_SENDER:
            raise NonceGapError(f"sender already has {MAX_HELD_PER_SENDER} held transactions")
        held[tx.nonce] = checked
        self._by_sender[tx.sender] = held
        self.by_hash[checked.stx.hash] = checked

    def take(self, sender: bytes, nonce: int) -> CheckedTx:
        held = self._by_sender[sender]
        checked = held.pop(nonce)
        if not held:
            del self._by_sender[sender]
        del self.by_hash[checked.stx.hash]
        return checked

    def listed(self) -> list[SignedTx]:
        """By sender and nonce."""
        return [
            self._by_sender[s][n].stx
            for s in sorted(self._by_sender)
            for n in sorted(self._by_sender[s])
        ]
