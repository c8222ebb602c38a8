"""The head of a hash chain over an append-only history, for state sections whose history grows
with the run (closed rounds): head_0 is 32 zero bytes, head_i = SHA-256(head_{i-1} || d_i), where d_i
is the digest of item i's canonical form. A root that hashes the head instead of the history costs
what a block appended, not the run's length.

Each item caches the head it extends and the head it makes (on the immutable item itself, as
section digests are cached), so walking a history of n items whose heads are known costs n lookups
and no hashing; an item met after a different head (another history) is hashed again.

Deliberately ignored: proofs of membership (a Merkle tree would give them; nothing asks for one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fedray.core.encoding import DIGEST_SIZE, Canonical, digest, hash_value

EMPTY_HEAD = bytes(DIGEST_SIZE)
_CACHE = "_fedray_chain"


def chain_head(items: Iterable[Any], canonical: Callable[[Any], Canonical]) -> bytes:
    """The head after `items`, in order; `canonical` gives an item's canonical form."""
    head = EMPTY_HEAD
    for item in items:
        cached: tuple[bytes, bytes] | None = item.__dict__.get(_CACHE)
        if cached is not None and cached[0] == head:
            head = cached[1]
            continue
        following = digest(head + hash_value(canonical(item)))
        object.__setattr__(item, _CACHE, (head, following))
        head = following
    return head
