"""Data availability: which pinned payload a transaction needs before it can execute.

A block is checked, and executed, only once every payload it references is in the local blob store
(`LedgerApp.missing_payloads`); this module reads that reference out of a transaction's bytes.
"""

from __future__ import annotations

import functools

from fedray.core.tx import SignedTx
from fedray.errors import FedrayError

# Answers of `needed_payload`, a pure function of the bytes: a proposal's transactions are asked
# about when it arrives (missing payloads), when it is checked, and when proposed.
NEEDED_PAYLOAD_CACHE = 16_384


@functools.lru_cache(maxsize=NEEDED_PAYLOAD_CACHE)
def needed_payload(raw: bytes) -> bytes | None:
    """The digest of the payload a transaction needs pinned before it can execute: an update's,
    or the malformed payload a `payload_evidence` points to; None for other kinds, for
    evidence proven by signatures alone, and for malformed input (execution refuses it with
    its own rule)."""
    # A kind is canonical UTF-8 text, its bytes contiguous in the transaction's: without them
    # it is neither kind, and most transactions skip the decoding.
    if b"update" not in raw and b"payload_evidence" not in raw:
        return None
    try:
        stx = SignedTx.decode(raw)
        if stx.tx.kind == "update":
            needed = stx.tx.payload.get("payload_hash")
        elif stx.tx.kind == "payload_evidence":
            update = SignedTx.decode(stx.tx.payload["update_tx"])
            needed = stx.tx.payload["delivered_digest"]
            if needed != update.tx.payload.get("payload_hash"):
                return None  # a hash mismatch is proven by signatures alone
        else:
            return None
    except (FedrayError, KeyError, TypeError):
        return None
    return needed if isinstance(needed, bytes) else None
