"""Clients' recent learning conduct (the `conduct` section's `history`): each client's last
`flag_window` rounds as (round, flags, payload hash), and the hash the state root takes of them.

Every client that ever answered a round keeps an entry, so the map grows with the population, and
the section changes every block (validators' signing windows live beside it). Hashing the whole
map each block cost 0.45 s per block per validator with 10,000 clients. So the map is kept in
4,096 buckets by the first 12 bits of the client key, as the accounts are (`accounts_tree.py`):
a round's update copies only the buckets it touches, each bucket's digest is computed once and
shared by every later version that leaves it alone, and the history's root hashes the non-empty
buckets' digests. Its canonical form (snapshots) is the plain map, as before.

Deliberately ignored: proofs of membership.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from fedray.core.codec import decode_as, encode_as
from fedray.core.encoding import digest, encode

Entries = tuple[tuple[int, int, bytes], ...]  # (round, flags, payload hash), oldest first
_MAP = MappingProxyType[bytes, Entries]
BUCKET_BITS = 12
_SHIFT = 16 - BUCKET_BITS


def _bucket_of(client: bytes) -> int:
    return int.from_bytes(client[:2].ljust(2, b"\0"), "big") >> _SHIFT


class ClientHistory(Mapping[bytes, Entries]):
    """An immutable map client -> entries, stored by bucket with cached bucket digests."""

    __slots__ = ("_buckets", "_digests", "_len", "_root")

    def __init__(
        self,
        buckets: Mapping[int, Mapping[bytes, Entries]],
        digests: Mapping[int, bytes] | None = None,
    ) -> None:
        self._buckets = dict(buckets)
        self._digests = dict(digests or {})
        self._len = sum(len(b) for b in self._buckets.values())
        self._root: bytes | None = None

    @staticmethod
    def build(entries: Mapping[bytes, Entries]) -> ClientHistory:
        buckets: dict[int, dict[bytes, Entries]] = {}
        for client, recent in entries.items():
            buckets.setdefault(_bucket_of(client), {})[client] = recent
        return ClientHistory({i: MappingProxyType(b) for i, b in buckets.items()})

    def __getitem__(self, client: bytes) -> Entries:
        return self._buckets.get(_bucket_of(client), {})[client]

    def __iter__(self) -> Iterator[bytes]:
        for i in sorted(self._buckets):
            yield from sorted(self._buckets[i])

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"ClientHistory({dict(self.items())!r})"

    def updated(self, changes: Mapping[bytes, Entries]) -> ClientHistory:
        """A new history with `changes` written (an empty entry tuple stays an entry); untouched
        buckets and their digests are shared."""
        touched: dict[int, dict[bytes, Entries]] = {}
        for client, recent in changes.items():
            i = _bucket_of(client)
            if i not in touched:
                touched[i] = dict(self._buckets.get(i, {}))
            touched[i][client] = recent
        buckets = {**self._buckets, **{i: MappingProxyType(b) for i, b in touched.items()}}
        digests = {i: d for i, d in self._digests.items() if i not in touched}
        return ClientHistory(buckets, digests)

    def root(self) -> bytes:
        """Digest over [bucket index, bucket digest] of the non-empty buckets, in index order; a
        bucket's digest is that of its [client, entries] pairs in key order."""
        if self._root is None:
            parts = []
            for i in sorted(self._buckets):
                d = self._digests.get(i)
                if d is None:
                    bucket = self._buckets[i]
                    d = digest(encode([[c, [list(e) for e in bucket[c]]] for c in sorted(bucket)]))
                    self._digests[i] = d
                parts.append([i, d])
            self._root = digest(encode(parts))
        return self._root


EMPTY_HISTORY = ClientHistory({})


def history_to_canonical(history: ClientHistory) -> Any:
    return encode_as(_MAP, MappingProxyType(dict(history.items())))


def history_from_canonical(value: object) -> ClientHistory:
    return ClientHistory.build(decode_as(_MAP, value, "Conduct.history"))
