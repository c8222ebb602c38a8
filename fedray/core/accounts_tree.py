"""Accounts and the hash tree over them: the accounts part of the state root.

Each account has a leaf hash, accounts fall into 4096 buckets by the first 12 bits of their key, a
bucket hash covers its sorted (key, leaf) pairs, and the accounts root hashes the 4096 bucket
hashes. Accounts are stored per bucket, so applying a block copies and rehashes only the buckets it
touched (`AccountsTree.updated`): what a block costs does not grow with the number of accounts.
The tree also indexes the accounts flagged as validators (not hashed), so the next validator set
reads those alone.

Deliberately ignored: proofs of inclusion for light clients (the bucket tree could serve them later).
"""

from __future__ import annotations

import dataclasses
from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from dataclasses import dataclass, field

from fedray.core.codec import Encodable
from fedray.core.crypto import PUBLIC_KEY_SIZE
from fedray.core.encoding import UINT64_MAX, digest, encode
from fedray.errors import EncodingError

BUCKET_BITS = 12
N_BUCKETS = 1 << BUCKET_BITS
_EMPTY_BUCKET = digest(b"")


@dataclass(frozen=True)
class Account(Encodable):
    """One participant. `jailed_until` > 0: jailed, may unjail from that height on (0: free)."""

    balance: int = 0
    stake: int = 0
    nonce: int = 0
    is_client: bool = False
    is_validator: bool = False
    jailed_until: int = 0
    banned: bool = False

    @property
    def jailed(self) -> bool:
        """Banned, or jailed and not yet unjailed (an `unjail` transaction, allowed from height
        `jailed_until` on, clears it)."""
        return self.banned or self.jailed_until > 0


_ACCOUNT_FIELDS = frozenset(f.name for f in dataclasses.fields(Account))


def copy_account(account: Account, changes: Mapping[str, object]) -> Account:
    """`dataclasses.replace(account, **changes)` for the hot path (every transaction writes 3-4
    accounts): a copy of the instance dict, at a fraction of the cost of the frozen constructor.
    Account has no `__post_init__`; an unknown field is a TypeError, as with `replace`."""
    if not changes.keys() <= _ACCOUNT_FIELDS:
        unknown = sorted(set(changes) - _ACCOUNT_FIELDS)
        raise TypeError(f"Account has no fields {unknown}")
    new = object.__new__(Account)
    fields = new.__dict__
    fields.update(account.__dict__)
    fields.update(changes)
    return new


def _uint(value: int) -> bytes:
    """Canonical bytes of 0 <= value <= 2**64-1 (`encoding._head` of an unsigned integer)."""
    if value < 24:
        return _SMALL_UINTS[value]
    if value <= 0xFF:
        return bytes((0x18, value))
    if value <= 0xFFFF:
        return b"\x19" + value.to_bytes(2, "big")
    if value <= 0xFFFFFFFF:
        return b"\x1a" + value.to_bytes(4, "big")
    return b"\x1b" + value.to_bytes(8, "big")


_SMALL_UINTS = [bytes((v,)) for v in range(24)]
_LEAF_PREFIX = b"\x82\x58\x20"  # [key, account]: an array of 2, then a 32-byte string
_ACCOUNT_HEAD = b"\x87"  # an array of the 7 fields


def _leaf(key: bytes, account: Account) -> bytes:
    """digest(encode([key, account.to_canonical()])), written out for the common case (a
    32-byte key, integers in range, booleans) because every block hashes each account it
    touched; anything else takes the generic encoder (and raises its errors)."""
    a = account.__dict__
    ints = (a["balance"], a["stake"], a["nonce"], a["jailed_until"])
    flags = (a["is_client"], a["is_validator"], a["banned"])
    if (
        len(key) != PUBLIC_KEY_SIZE
        or type(key) is not bytes
        or any(type(v) is not int or not 0 <= v <= UINT64_MAX for v in ints)
        or any(type(f) is not bool for f in flags)
    ):
        return digest(encode([key, account.to_canonical()]))
    balance, stake, nonce, jailed_until = ints
    is_client, is_validator, banned = flags
    return digest(
        b"".join(
            (
                _LEAF_PREFIX,
                key,
                _ACCOUNT_HEAD,
                _uint(balance),
                _uint(stake),
                _uint(nonce),
                _TRUE if is_client else _FALSE,
                _TRUE if is_validator else _FALSE,
                _uint(jailed_until),
                _TRUE if banned else _FALSE,
            )
        )
    )


_TRUE, _FALSE = b"\xf5", b"\xf4"


def _bucket_of(key: bytes) -> int:
    return int.from_bytes(key[:2], "big") >> (16 - BUCKET_BITS)


_Bucket = dict[bytes, tuple[Account, bytes]]  # key -> (account, leaf hash)


class _BucketedAccounts(Mapping[bytes, Account]):
    """A read-only mapping over the buckets' accounts (iteration goes bucket by bucket)."""

    def __init__(self, buckets: list[_Bucket], count: int) -> None:
        self._buckets = buckets
        self._count = count

    def __getitem__(self, key: bytes) -> Account:
        if not isinstance(key, bytes) or len(key) < 2:
            raise KeyError(key)
        return self._buckets[_bucket_of(key)][key][0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and len(key) >= 2 and key in self._buckets[_bucket_of(key)]

    def __iter__(self) -> Iterator[bytes]:
        for bucket in self._buckets:
            yield from bucket

    def __len__(self) -> int:
        return self._count

    def items(self) -> ItemsView[bytes, Account]:
        return _BucketItems(self)

    def values(self) -> ValuesView[Account]:
        return _BucketValues(self)


class _BucketItems(ItemsView[bytes, Account]):
    """Items straight from the buckets (a full scan, such as eligibility, reads each once)."""

    _mapping: _BucketedAccounts

    def __iter__(self) -> Iterator[tuple[bytes, Account]]:
        for bucket in self._mapping._buckets:
            for key, (account, _) in bucket.items():
                yield key, account


class _BucketValues(ValuesView[Account]):
    _mapping: _BucketedAccounts

    def __iter__(self) -> Iterator[Account]:
        for bucket in self._mapping._buckets:
            for account, _ in bucket.values():
                yield account


@dataclass(frozen=True)
class AccountsTree:
    """Accounts with cached leaf and bucket hashes; treat as immutable (use `updated`).

    Accounts are stored per bucket, so a block that touches t accounts copies t buckets (a few
    entries each) and the list of bucket references, not every account: its cost does not grow
    with the number of accounts. `validator_keys` indexes the accounts flagged as validators, so
    the next validator set is computed from them alone."""

    accounts: Mapping[bytes, Account]
    _bucket_hashes: list[bytes] = field(repr=False)
    _buckets: list[_Bucket] = field(repr=False)
    validator_keys: frozenset[bytes] = frozenset()  # accounts flagged is_validator (not hashed)

    @staticmethod
    def build(accounts: Mapping[bytes, Account]) -> AccountsTree:
        buckets: list[_Bucket] = [{} for _ in range(N_BUCKETS)]
        empty = AccountsTree(_BucketedAccounts(buckets, 0), [_EMPTY_BUCKET] * N_BUCKETS, buckets)
        return empty.updated(accounts)

    def updated(self, changes: Mapping[bytes, Account]) -> AccountsTree:
        """A new tree with `changes` applied; rehashes only touched leaves and buckets."""
        if not changes:
            return self
        buckets = list(self._buckets)
        hashes = list(self._bucket_hashes)
        count = len(self.accounts)
        copied: set[int] = set()
        flagged = {k for k, a in changes.items() if a.is_validator}
        unflagged = {k for k, a in changes.items() if not a.is_validator}
        validator_keys = self.validator_keys
        if not flagged <= validator_keys or unflagged & validator_keys:
            validator_keys = (validator_keys - unflagged) | flagged
        for key, account in changes.items():
            if len(key) != PUBLIC_KEY_SIZE:
                raise EncodingError(f"account keys are {PUBLIC_KEY_SIZE}-byte public keys")
            b = _bucket_of(key)
            if b not in copied:  # copy on write: the old tree keeps its bucket
                buckets[b] = dict(buckets[b])
                copied.add(b)
            if key not in buckets[b]:
                count += 1
            buckets[b][key] = (account, _leaf(key, account))
        for b in copied:
            bucket = buckets[b]
            hashes[b] = digest(b"".join(k + bucket[k][1] for k in sorted(bucket)))
        return AccountsTree(_BucketedAccounts(buckets, count), hashes, buckets, validator_keys)

    def root(self) -> bytes:
        return digest(b"".join(self._bucket_hashes))

    def get(self, key: bytes) -> Account | None:
        entry = self._buckets[_bucket_of(key)].get(key) if len(key) >= 2 else None
        return None if entry is None else entry[0]
