"""Token supply bookkeeping and the one way to penalize: mint, burn, and `penalize`.

Supply changes only here: `mint` (rewards) adds to an account and to `minted`; `burn_stake` and
`burn_amount` (slashes, vetoed deposits) remove tokens and add to `burned`. So at every height
    sum of balances and stakes + tokens escrowed by contracts == genesis supply + minted - burned,
which the tests check over random transaction sequences. The tokens contracts hold are governance
deposits and unbonding stake (`escrowed`).

Every penalty goes through `penalize`, which burns a fraction of the offender's stake and of each of
its unbonding entries (so unstaking does not escape a penalty whose evidence lands later), optionally
jails or bans, and appends a `PenaltyRecord` (kind, height, offender, digest of the proof) to the
`penalties` section; its `key` makes a repeated penalty for the same proof a no-op, so each piece of
evidence is applied exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Annotated

from fedray.core.codec import KeyedBy
from fedray.core.contracts import governance_state, unbonding
from fedray.core.journal import Journal
from fedray.core.sections import SectionSpec, register_section
from fedray.core.state import Account, State

BPS = 10_000


@dataclass(frozen=True)
class Supply:
    """The `economy` section: totals since genesis."""

    minted: int = 0
    burned: int = 0


ECONOMY = register_section(SectionSpec("economy", Supply, Supply))


@dataclass(frozen=True)
class PenaltyRecord:
    """One applied penalty. `key` identifies the misbehaviour (the same key is never penalized
    twice); `proof_digest` is the digest of what proves it."""

    key: bytes
    kind: str
    height: int  # height (or round, for learning evidence) of the misbehaviour
    offender: bytes
    proof_digest: bytes
    burned: int
    jailed_until: int
    banned: bool
    included_at: int


# The records in the order they were applied (that order is part of the state root).
Penalties = Annotated[Mapping[bytes, PenaltyRecord], KeyedBy("key", ascending=False)]
PENALTIES = register_section(SectionSpec("penalties", Penalties, lambda: MappingProxyType({})))


# --- supply -----------------------------------------------------------------------------------
def _supply(journal: Journal) -> Supply:
    return journal.section("economy")  # type: ignore[no-any-return]


def mint(journal: Journal, to: bytes, amount: int) -> None:
    """Create `amount` new tokens on `to`'s balance."""
    if amount <= 0:
        return
    acct = journal.account_or_empty(to)
    journal.put_account(to, replace(acct, balance=acct.balance + amount))
    s = _supply(journal)
    journal.set_section("economy", replace(s, minted=s.minted + amount))


def burn_amount(journal: Journal, amount: int) -> None:
    """Record the destruction of `amount` tokens already taken out of accounts or escrow."""
    if amount <= 0:
        return
    s = _supply(journal)
    journal.set_section("economy", replace(s, burned=s.burned + amount))


def burn_stake(journal: Journal, who: bytes, bps: int) -> int:
    """Burn `bps` basis points of `who`'s stake and of each of its unbonding entries (each rounded
    down); returns the amount burned."""
    acct = journal.account_or_empty(who)
    amount = acct.stake * bps // BPS
    if amount:
        journal.put_account(who, replace(acct, stake=acct.stake - amount))
    amount += unbonding.slash(journal, who, bps)
    burn_amount(journal, amount)
    return amount


def penalize(
    journal: Journal,
    *,
    key: bytes,
    kind: str,
    offender: bytes,
    height: int,
    proof_digest: bytes,
    included_at: int,
    bps: int,
    jail_blocks: int = 0,
    ban: bool = False,
) -> PenaltyRecord | None:
    """Burn, jail or ban once per `key`; returns the record, or None if `key` was penalized."""
    records = journal.section("penalties")
    if key in records:
        return None
    burned = burn_stake(journal, offender, bps)
    acct: Account = journal.account_or_empty(offender)
    jailed_until = acct.jailed_until
    if jail_blocks:
        jailed_until = max(jailed_until, included_at + jail_blocks)
    acct = replace(acct, jailed_until=jailed_until, banned=acct.banned or ban)
    journal.put_account(offender, acct)
    record = PenaltyRecord(
        key, kind, height, offender, proof_digest, burned, jailed_until, ban, included_at
    )
    journal.set_section("penalties", MappingProxyType({**records, key: record}))
    return record


# --- invariant --------------------------------------------------------------------------------
def account_total(accounts: Iterable[Account]) -> int:
    return sum(a.balance + a.stake for a in accounts)


def escrowed(state: State) -> int:
    """Tokens held by contracts rather than accounts: governance deposits and unbonding stake."""
    return governance_state.escrowed(state.section("governance")) + unbonding.total(state)


def supply_identity(state: State, genesis_supply: int) -> tuple[int, int]:
    """(tokens that exist, tokens the books say should exist); equal on every valid chain."""
    s: Supply = state.section("economy")
    exists = account_total(state.accounts.accounts.values()) + escrowed(state)
    return exists, genesis_supply + s.minted - s.burned
