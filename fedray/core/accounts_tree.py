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

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from dataclasses import dataclass, field

from fedray.core.codec import Encodable
from fedray.core.crypto import PUBLIC_KEY_SIZE
from fedray.core.encoding import digest, encode
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


def _leaf(key: bytes, account: Account) -> bytes:
    return digest(encode([key, account.to_canonical()]))


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
