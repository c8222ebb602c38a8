"""Batched admission checks: the stateless rules of many transactions (size, encoding, chain id,
kind, payload, and the Ed25519 signature, the expensive part) run in a small pool of threads. PyNaCl
releases the GIL while it verifies, so the threads verify in parallel, and the caller (a validator
or an ingress) hands a whole batch to the pool from a worker thread instead of its event loop.

Every transaction is checked in full: nothing here can mark a signature as verified without
verifying it (docs/security.md). Results come back in the batch's order.

Deliberately ignored: process pools (decoding holds the GIL; a process per verifier would pay
pickling of every transaction, and ingress actors already spread over processes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from fedray.core.transition import CheckedTx, check_tx_stateless
from fedray.errors import EncodingError, FedrayError

MIN_CHUNK = 64  # transactions per task: fewer would cost more in hand-offs than they save


def default_workers() -> int:
    return max(1, min(4, len(os.sched_getaffinity(0))))


class BatchVerifier:
    """A pool of `workers` threads checking transactions' stateless rules (see module docstring)."""

    def __init__(self, chain_id: str, workers: int | None = None) -> None:
        self.chain_id = chain_id
        self.workers = workers or default_workers()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="fedray-verify")

    def check_all(self, raws: Sequence[object], max_tx_bytes: int) -> list[CheckedTx | FedrayError]:
        """For each item, its `CheckedTx`, or the `FedrayError` naming the rule it broke (an item
        that is not bytes breaks the encoding rule)."""
        items = list(raws)
        if not items:
            return []
        size = max(MIN_CHUNK, -(-len(items) // self.workers))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        out: list[CheckedTx | FedrayError] = []
        if len(chunks) == 1:
            return self._check_chunk(chunks[0], max_tx_bytes)
        for part in self._pool.map(lambda c: self._check_chunk(c, max_tx_bytes), chunks):
            out.extend(part)
        return out

    def _check_chunk(self, raws: list[object], max_tx_bytes: int) -> list[CheckedTx | FedrayError]:
        out: list[CheckedTx | FedrayError] = []
        for raw in raws:
            try:
                if not isinstance(raw, bytes):
                    raise EncodingError("a transaction is a byte string")
                out.append(check_tx_stateless(raw, self.chain_id, max_tx_bytes))
            except FedrayError as exc:
                out.append(exc)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
