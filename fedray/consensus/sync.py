"""Catch-up: verifying committed blocks that come from peers, and choosing what to serve them.

A node that fell behind (partitioned, crashed, or simply missed precommits) learns committed blocks
from peers as (block, certificate) pairs. Each is checked against the validator set of its height,
so a node can only apply them in height order: `SyncBuffer` holds pairs that arrived early and hands
out the one for the height the node is at; the engine verifies it (`CertifiedBlock`) and decides.
Serving is the mirror: a message for a height below ours means the sender is behind, and
`wanted_heights` says which committed heights to send it.

Pure: no I/O or clock; the shell (simulator or Ray actor) moves the pairs.

Deliberately ignored: state sync from snapshots, and fetching by request/response with retries (here
a lagging node keeps gossiping its old height, which keeps triggering answers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from fedray.core.block import Block, CommitCertificate
from fedray.core.state import ValidatorSet
from fedray.errors import CertificateError

MAX_BATCH = 16  # committed blocks sent per answer


def verify_certified(
    chain_id: str, validators: ValidatorSet, block: Block, certificate: CommitCertificate
) -> None:
    """Raise `CertificateError` unless `certificate` proves `block` committed by `validators` (the
    set of `block.height`)."""
    if certificate.height != block.height:
        raise CertificateError(
            f"certificate is for height {certificate.height}, block is {block.height}"
        )
    certificate.verify(chain_id, validators, block.hash, block.height)


def wanted_heights(their_height: int, our_height: int, max_batch: int = MAX_BATCH) -> range:
    """Committed heights to send a peer that is working on `their_height` while we work on
    `our_height` (everything below ours is committed here)."""
    if their_height >= our_height or their_height < 1:
        return range(0)
    return range(their_height, min(our_height, their_height + max_batch))


@dataclass(frozen=True)
class SyncBuffer:
    """Certified blocks received ahead of time, by height (unverified until their turn)."""

    pending: Mapping[int, tuple[Block, CommitCertificate]] = field(default_factory=dict)
    limit: int = 256

    def add(self, block: Block, certificate: CommitCertificate, our_height: int) -> SyncBuffer:
        """Keep the pair if it is for a height we have not reached, not too far ahead; the first pair
        per height wins (if it fails verification when taken, a later answer can replace it)."""
        h = block.height
        if h < our_height or h >= our_height + self.limit or h in self.pending:
            return self
        pending = dict(self.pending)
        pending[h] = (block, certificate)
        return SyncBuffer(pending, self.limit)

    def take(self, height: int) -> tuple[tuple[Block, CommitCertificate] | None, SyncBuffer]:
        """The pair for `height`, if any, and the buffer without it and anything below it."""
        if not self.pending:
            return None, self
        pair = self.pending.get(height)
        pending = {h: v for h, v in self.pending.items() if h > height}
        return pair, SyncBuffer(pending, self.limit)


class BlockSource(Protocol):
    """Committed blocks a node can serve to peers that are behind."""

    def committed(self, height: int) -> tuple[Block, CommitCertificate] | None: ...


@dataclass(frozen=True)
class SyncBatch:
    """Committed blocks with their certificates, sent to a peer that is behind (ascending heights)."""

    items: tuple[tuple[Block, CommitCertificate], ...]


def batch_for(source: BlockSource, their_height: int, our_height: int) -> SyncBatch | None:
    """What to send a peer working on `their_height`, or None if it is not behind us."""
    items = []
    for h in wanted_heights(their_height, our_height):
        pair = source.committed(h)
        if pair is None:
            break
        items.append(pair)
    return SyncBatch(tuple(items)) if items else None
