"""Unbonding: unstaked tokens stay slashable for `unbonding_blocks` before they reach the balance.

Without it a validator could equivocate, unstake at once and keep its tokens before the evidence
lands. So `unstake` (accounts.py) moves tokens from stake into an unbonding entry released at height
h + unbonding_blocks; until the end of that block `economy.penalize` burns the same fraction of every
entry as of the stake, and `economy.supply_identity` counts the entries. Voting power and selection
follow the stake, so they drop at once.

`release_due` is an explicit end-of-block step (`end_block.py`), after every penalty of the block.
An entry whose release would overflow the balance (only possible with a supply near 2**64) waits in
place rather than halt the chain.

Owns the `unbonding` section. Ignores redelegation and partial cancellation of unbonding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Annotated

from fedray.core.codec import Size
from fedray.core.context import ExecContext
from fedray.core.crypto import PUBLIC_KEY_SIZE
from fedray.core.encoding import UINT64_MAX
from fedray.core.journal import Journal
from fedray.core.sections import SectionSpec, register_section
from fedray.core.state import State
from fedray.errors import IntegerOverflowError


@dataclass(frozen=True)
class UnbondingEntry:
    release_at: int  # the height at whose end the tokens reach the balance
    amount: int


PublicKey = Annotated[bytes, Size(PUBLIC_KEY_SIZE)]
# Each account's entries in ascending `release_at`, one entry per height.
Unbonding = Mapping[PublicKey, tuple[UnbondingEntry, ...]]
UNBONDING = register_section(SectionSpec("unbonding", Unbonding, lambda: MappingProxyType({})))


def _section(journal: Journal) -> Unbonding:
    return journal.section("unbonding")  # type: ignore[no-any-return]


def _store(journal: Journal, entries: dict[bytes, tuple[UnbondingEntry, ...]]) -> None:
    journal.set_section("unbonding", MappingProxyType({k: v for k, v in entries.items() if v}))


def start(journal: Journal, who: bytes, amount: int, ctx: ExecContext) -> int:
    """Put `amount` (already taken from `who`'s stake) into unbonding; returns its release height."""
    release_at = ctx.height + journal.params.unbonding_blocks
    if release_at > UINT64_MAX:  # rule: no integer overflow (a genesis guard keeps it far off)
        raise IntegerOverflowError("unbonding release height would exceed 2**64-1")
    entries = dict(_section(journal))
    mine = list(entries.get(who, ()))
    if mine and mine[-1].release_at == release_at:
        total = mine[-1].amount + amount
        if total > UINT64_MAX:
            raise IntegerOverflowError("unbonding amount would exceed 2**64-1")
        mine[-1] = replace(mine[-1], amount=total)
    else:
        mine.append(UnbondingEntry(release_at, amount))
    entries[who] = tuple(mine)
    _store(journal, entries)
    return release_at


def slash(journal: Journal, who: bytes, bps: int) -> int:
    """Burn `bps` basis points (rounded down) of each of `who`'s entries; returns the amount taken
    (the caller records the burn)."""
    mine = _section(journal).get(who, ())
    cuts = [e.amount * bps // 10_000 for e in mine]
    if not any(cuts):
        return 0
    entries = dict(_section(journal))
    entries[who] = tuple(
        replace(e, amount=e.amount - cut) for e, cut in zip(mine, cuts, strict=True)
    )
    _store(journal, entries)
    return sum(cuts)


def release_due(journal: Journal, ctx: ExecContext) -> None:
    """End-of-block step: entries whose period ends at this height go to their owners' balance."""
    section = _section(journal)
    due = [k for k, mine in section.items() if mine[0].release_at <= ctx.height]
    if not due:
        return
    entries = dict(section)
    for who in sorted(due):
        kept: list[UnbondingEntry] = []
        for entry in entries[who]:
            acct = journal.account_or_empty(who)
            if entry.release_at > ctx.height or acct.balance + entry.amount > UINT64_MAX:
                kept.append(entry)
            else:
                journal.put_account(who, replace(acct, balance=acct.balance + entry.amount))
        entries[who] = tuple(kept)
    _store(journal, entries)


def total(state: State) -> int:
    """Tokens unbonding on the whole chain (the supply identity counts them)."""
    section: Unbonding = state.section("unbonding")
    return sum(e.amount for mine in section.values() for e in mine)
