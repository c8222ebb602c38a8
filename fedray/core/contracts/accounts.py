"""Account transactions: transfer, stake, unstake, register.

Each handler runs after the envelope rules (nonce, jail, gas, fee) and either changes the journal or
raises; `transition.execute_tx` undoes partial writes. Stake counts as voting power for validators and
as the bond that slashing takes from; unstaked tokens unbond for `unbonding_blocks`, still slashable,
before they reach the balance (`unbonding.py`).

Deliberately ignored here: penalties (the incentives and slashing contracts).
"""

from __future__ import annotations

from dataclasses import dataclass

from fedray.core.context import ExecContext
from fedray.core.contracts import unbonding
from fedray.core.crypto import PUBLIC_KEY_SIZE
from fedray.core.encoding import UINT64_MAX
from fedray.core.journal import Journal
from fedray.core.tx import KindSpec, SignedTx, register_kind
from fedray.errors import (
    InsufficientBalanceError,
    InsufficientStakeError,
    IntegerOverflowError,
    PayloadError,
    RegistrationError,
)

ROLES = ("client", "validator")


@dataclass(frozen=True)
class Transfer:
    to: bytes
    amount: int

    def validate(self) -> None:
        if len(self.to) != PUBLIC_KEY_SIZE:
            raise PayloadError(f"transfer.to must be a {PUBLIC_KEY_SIZE}-byte public key")
        if self.amount == 0:
            raise PayloadError("transfer.amount must be positive")


@dataclass(frozen=True)
class Stake:
    amount: int

    def validate(self) -> None:
        if self.amount == 0:
            raise PayloadError("stake.amount must be positive")


@dataclass(frozen=True)
class Unstake:
    amount: int

    def validate(self) -> None:
        if self.amount == 0:
            raise PayloadError("unstake.amount must be positive")


@dataclass(frozen=True)
class Register:
    role: str

    def validate(self) -> None:
        if self.role not in ROLES:
            raise PayloadError(f"register.role must be one of {ROLES}, got {self.role!r}")


def _add(a: int, b: int, what: str) -> int:
    if a + b > UINT64_MAX:  # rule: no integer overflow
        raise IntegerOverflowError(f"{what} would exceed 2**64-1")
    return a + b


def apply_transfer(journal: Journal, stx: SignedTx, p: Transfer, ctx: ExecContext) -> None:
    sender = journal.account_or_empty(stx.tx.sender)
    if sender.balance < p.amount:  # rule: balance covers the amount
        raise InsufficientBalanceError(f"balance {sender.balance} < transfer amount {p.amount}")
    journal.update_account(stx.tx.sender, balance=sender.balance - p.amount)
    recipient = journal.account_or_empty(p.to)
    journal.update_account(p.to, balance=_add(recipient.balance, p.amount, "recipient balance"))


def apply_stake(journal: Journal, stx: SignedTx, p: Stake, ctx: ExecContext) -> None:
    acct = journal.account_or_empty(stx.tx.sender)
    if acct.balance < p.amount:  # rule: balance covers the stake
        raise InsufficientBalanceError(f"balance {acct.balance} < stake amount {p.amount}")
    journal.update_account(
        stx.tx.sender, balance=acct.balance - p.amount, stake=_add(acct.stake, p.amount, "stake")
    )


def apply_unstake(journal: Journal, stx: SignedTx, p: Unstake, ctx: ExecContext) -> None:
    acct = journal.account_or_empty(stx.tx.sender)
    if acct.stake < p.amount:  # rule: cannot unstake more than staked
        raise InsufficientStakeError(f"stake {acct.stake} < unstake amount {p.amount}")
    journal.update_account(stx.tx.sender, stake=acct.stake - p.amount)
    unbonding.start(journal, stx.tx.sender, p.amount, ctx)  # rule: unstaked tokens unbond first


def apply_register(journal: Journal, stx: SignedTx, p: Register, ctx: ExecContext) -> None:
    acct = journal.account_or_empty(stx.tx.sender)
    params = journal.params
    if p.role == "client":
        if acct.is_client:  # rule: register once per role
            raise RegistrationError("sender is already registered as a client")
        if acct.stake < params.min_stake_client:  # rule: minimum stake to take part
            raise InsufficientStakeError(
                f"stake {acct.stake} is below the client minimum {params.min_stake_client}"
            )
        journal.update_account(stx.tx.sender, is_client=True)
    else:
        if acct.is_validator:
            raise RegistrationError("sender is already registered as a validator")
        if acct.stake < params.min_stake_validator:
            raise InsufficientStakeError(
                f"stake {acct.stake} is below the validator minimum {params.min_stake_validator}"
            )
        journal.update_account(stx.tx.sender, is_validator=True)


TRANSFER = register_kind(KindSpec("transfer", Transfer, 1_000, apply_transfer))
STAKE = register_kind(KindSpec("stake", Stake, 2_000, apply_stake))
UNSTAKE = register_kind(KindSpec("unstake", Unstake, 2_000, apply_unstake))
REGISTER = register_kind(KindSpec("register", Register, 5_000, apply_register))
