"""Who takes part in a round: the eligible clients (registered, staked, free, before this block
too) and the draw among them, fixed by a seed from the opening block's VRF output (`beacon.py`).
Opening and closing rounds is `rounds.py`'s; how the randomness is made is `beacon.py`'s."""

from __future__ import annotations

import hashlib
import heapq

from fedray.core.contracts.privacy import ledger_of, within_budget
from fedray.core.encoding import hash_value
from fedray.core.journal import Journal
from fedray.core.state import Account


def eligible_clients(journal: Journal, *, budget: bool = True) -> list[bytes]:
    """Registered, staked, free clients, now and before this block: the proposer knows its VRF
    output before it builds the block, so a client it registers in that block (a sybil key
    ground to rank first under that output) must not take part in the draw. With `budget`, only
    those whose next participation stays within the privacy budget (`privacy.within_budget`)."""
    params = journal.params

    def eligible(acct: Account | None) -> bool:
        return (
            acct is not None
            and acct.is_client
            and not acct.jailed
            and acct.stake >= params.min_stake_client
        )

    ledger = ledger_of(journal)
    # One pass over the accounts before this block (an account the block created is not in the
    # base, so never eligible), the few the block changed checked again as they are now; the
    # test is `eligible` written out, since it runs once per registered account every round.
    pending = journal.pending_accounts()
    min_stake = params.min_stake_client
    return sorted(
        key
        for key, acct in journal.base.accounts.accounts.items()
        if acct.is_client
        and acct.stake >= min_stake
        and not acct.banned
        and not acct.jailed_until
        and (key not in pending or eligible(pending[key]))
        and (not budget or within_budget(ledger, params, key))
    )


def select_clients(candidates: list[bytes], k: int, seed: bytes) -> tuple[bytes, ...]:
    """The k candidates with the smallest H(seed || key): a uniform sample fixed by the seed.
    (`heapq.nsmallest` returns what `sorted(...)[:k]` would, ties in candidate order, without
    sorting every candidate; H is `encoding.digest`, SHA-256.)"""
    sha256 = hashlib.sha256
    return tuple(
        sorted(heapq.nsmallest(k, candidates, key=lambda key: sha256(seed + key).digest()))
    )


def selection_seed(randomness: bytes, round_: int) -> bytes:
    """The seed of round `round_`'s draw, from the opening block's VRF output."""
    return hash_value(["fedray/select", randomness, round_])
