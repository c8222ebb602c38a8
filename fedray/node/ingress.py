"""Ingress: the stateless gate in front of a validator's mempool.

For each submitted transaction it runs the stateless rules (size, encoding, chain id, kind, payload
fields, signature: the expensive part, which is why ingress runs beside the validator in its own
actor and scales out), then, for an `update`, pins the payload: validates the arrays in the order
size, hash, dtype, shape, finiteness against the model's layout and writes them to the validator's
blob store, so the update stays available even if its client dies. Only then is the transaction
handed to the mempool for the stateful rules. Every refusal is returned with its rule's code.

Payloads arrive as plain numpy arrays (from Ray's object store) or safetensors bytes; nothing is
unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fedray.core.contracts.rounds import Update
from fedray.core.transition import check_tx_stateless
from fedray.errors import FedrayError, PayloadValidationError
from fedray.node.mempool import Rejection
from fedray.storage.blobs import BlobStore
from fedray.storage.tensors import TensorSpec, from_safetensors, validate_payload


class MissingPayloadError(PayloadValidationError):
    """An update transaction arrived without its payload."""

    code = "payload_missing"


class DeclaredSizeError(PayloadValidationError):
    """The transaction's declared size differs from the payload's."""

    code = "payload_declared_size"


@dataclass(frozen=True)
class Admitted:
    raw: bytes
    tx_hash: bytes


class Ingress:
    def __init__(self, chain_id: str, max_tx_bytes: int, blobs: BlobStore, model: TensorSpec,
                 max_payload_bytes: int | None = None) -> None:  # fmt: skip
        self.chain_id = chain_id
        self.max_tx_bytes = max_tx_bytes
        self.blobs = blobs
        self.model = model
        self.max_payload_bytes = max_payload_bytes or model.nbytes
        self.pinned_bytes = 0

    def admit(
        self, raw: bytes, payload: Mapping[str, np.ndarray] | bytes | None = None, height: int = 0
    ) -> Admitted | Rejection:
        stx = None
        try:
            checked = check_tx_stateless(raw, self.chain_id, self.max_tx_bytes)
            stx = checked.stx
            if isinstance(checked.payload, Update):
                self._pin(checked.payload, payload)
            return Admitted(raw, stx.hash)
        except FedrayError as exc:
            return Rejection(stx.hash if stx else b"", stx.tx.sender if stx else b"",
                             stx.tx.kind if stx else "", exc.code, str(exc), height)  # fmt: skip

    def _pin(self, update: Update, payload: Mapping[str, np.ndarray] | bytes | None) -> None:
        if payload is None:
            raise MissingPayloadError("update transaction without its payload")
        if isinstance(payload, bytes | bytearray | memoryview):
            payload = from_safetensors(bytes(payload), self.max_payload_bytes)
        arrays = validate_payload(payload, update.payload_hash, self.model, self.max_payload_bytes)
        size = sum(a.nbytes for a in arrays.values())
        if update.size != size:
            raise DeclaredSizeError(f"declared size {update.size}, payload has {size} bytes")
        if not self.blobs.has(update.payload_hash):
            self.blobs.put(arrays)
            self.pinned_bytes += size
