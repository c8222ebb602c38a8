"""A write journal over a frozen `State`: contracts read and write through it, and every write can be
undone to a savepoint, so a rejected transaction leaves no trace and a block builds its new state
with one copy instead of one per transaction.

This is the geth `StateDB` idea at small scale: an overlay of changed accounts, parameters and
sections plus an undo log; `finish()` folds the overlay into a new frozen `State`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from fedray.core.accounts_tree import copy_account
from fedray.core.encoding import UINT64_MAX
from fedray.core.state import Account, Params, State, ValidatorSet, check_uint64

_MISSING = object()
_EMPTY_ACCOUNT = Account()  # frozen: one instance serves every read of a missing account


class Journal:
    """Mutable view of a `State` for one block (or one transaction)."""

    def __init__(self, base: State) -> None:
        self.base = base
        self._accounts: dict[bytes, Account] = {}
        self._sections: dict[str, Any] = {}
        self._params: Params = base.params
        self._undo: list[tuple[str, Any, Any]] = []

    # --- reads ----------------------------------------------------------------------------
    @property
    def params(self) -> Params:
        return self._params

    @property
    def chain_id(self) -> str:
        return self.base.chain_id

    def account(self, key: bytes) -> Account | None:
        account = self._accounts.get(key)
        return self.base.account(key) if account is None else account

    def account_or_empty(self, key: bytes) -> Account:
        account = self._accounts.get(key)
        if account is None:
            account = self.base.accounts.get(key)
        return _EMPTY_ACCOUNT if account is None else account

    def section(self, name: str) -> Any:
        if name in self._sections:
            return self._sections[name]
        return self.base.section(name)

    def pending_accounts(self) -> Mapping[bytes, Account]:
        """The accounts this journal has changed or created (read-only; O(1))."""
        return MappingProxyType(self._accounts)

    def all_accounts(self) -> dict[bytes, Account]:
        """Every account with pending changes applied (a copy; O(accounts))."""
        merged = dict(self.base.accounts.accounts)
        merged.update(self._accounts)
        return merged

    # --- writes ---------------------------------------------------------------------------
    def put_account(self, key: bytes, account: Account) -> None:
        if not (
            0 <= account.balance <= UINT64_MAX
            and 0 <= account.stake <= UINT64_MAX
            and 0 <= account.nonce <= UINT64_MAX
        ):  # the common case in one test; the checks below name the field
            check_uint64(account.balance, "balance")
            check_uint64(account.stake, "stake")
            check_uint64(account.nonce, "nonce")
        self._undo.append(("account", key, self._accounts.get(key, _MISSING)))
        self._accounts[key] = account

    def update_account(self, key: bytes, **changes: Any) -> Account:
        account = copy_account(self.account_or_empty(key), changes)
        self.put_account(key, account)
        return account

    def set_section(self, name: str, value: Any) -> None:
        self._undo.append(("section", name, self._sections.get(name, _MISSING)))
        self._sections[name] = value

    def set_params(self, params: Params) -> None:
        self._undo.append(("params", None, self._params))
        self._params = params

    # --- savepoints -----------------------------------------------------------------------
    def savepoint(self) -> int:
        return len(self._undo)

    def revert(self, savepoint: int) -> None:
        while len(self._undo) > savepoint:
            what, key, old = self._undo.pop()
            if what == "account":
                store: dict[Any, Any] = self._accounts
            elif what == "section":
                store = self._sections
            else:
                self._params = old
                continue
            if old is _MISSING:
                del store[key]
            else:
                store[key] = old

    # --- fold -----------------------------------------------------------------------------
    def finish(self, **meta: Any) -> State:
        """A new frozen state with the overlay applied; `meta` replaces State fields (height,
        last_block_hash, last_block_time, validators, last_validators)."""
        sections = dict(self.base.sections)
        sections.update(self._sections)
        return dataclasses.replace(
            self.base,
            accounts=self.base.accounts.updated(self._accounts),
            params=self._params,
            sections=MappingProxyType(sections),
            **meta,
        )

    def next_validator_set(self) -> ValidatorSet:
        """`ValidatorSet.from_accounts` over every account, reading only those flagged as
        validators (before this block, or by it): every block computes it, so it must not scan
        the whole population."""
        keys = set(self.base.accounts.validator_keys)
        keys.update(k for k, a in self._accounts.items() if a.is_validator)
        flagged = {k: a for k in keys if (a := self.account(k)) is not None}
        return ValidatorSet.from_accounts(flagged, self._params)
