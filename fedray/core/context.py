"""The block a transaction or an end-of-block step executes in (`ExecContext`), and what the
application injects into execution (`BlockEnv`).

Its own module so that transaction kinds (`tx`), contracts and the transition all import it without
importing each other. Owns no rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BlockEnv:
    """What the application injects into execution: precompiles by name (aggregation enters here),
    the hashes of transactions whose signatures were already verified (ingress), and, by their
    bytes, transactions whose stateless rules the node already checked in full (`CheckedTx` of
    `transition.check_tx_stateless`, signature included: its mempool, its batch verifier), so a
    block's execution does not decode or verify them again."""

    precompiles: Mapping[str, Any] = field(default_factory=dict)
    verified: frozenset[bytes] | set[bytes] = frozenset()
    checked: Mapping[bytes, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecContext:
    """The block a transaction executes in."""

    height: int
    time: int
    proposer: bytes
    env: BlockEnv = BlockEnv()
    block_hash: bytes = b""
    last_commit_signers: tuple[bytes, ...] = ()  # who signed the previous block (rewards, liveness)
    randomness: bytes = b""  # the block's VRF output (beacon.py): what selects clients
