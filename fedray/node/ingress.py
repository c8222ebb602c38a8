"""Ingress: the stateless gate in front of a validator's mempool.

For each submitted transaction it runs the stateless rules (size, encoding, chain id, kind, payload
fields, signature: the expensive part, which is why ingress runs beside the validator in its own
actor and scales out), then, for an `update`, pins the payload: validates the arrays in the order
size, hash, dtype, shape, finiteness against the model's layout and writes them to the validator's
blob store, so the update stays available even if its client dies. Only then is the transaction
handed to the mempool for the stateful rules. Every refusal is returned with its rule's code.

Clients also sign a delivery statement, [round, digest of the payload they send] (domain
`DOMAIN_PAYLOAD`). When a payload is refused and the statement verifies, the client is provably at
fault (it signed a different hash in its transaction, or signed a malformed payload), and the ingress
returns `PayloadEvidence` that the validator turns into a `payload_evidence` transaction; a malformed
payload is then kept in the blob store so every validator can re-check it. An unsigned or badly
signed delivery is refused without evidence: anyone could have corrupted it.

Payloads arrive as plain numpy arrays (from Ray's object store) or safetensors bytes; nothing is
unpickled. Whatever a client sends is judged item by item: anything that is not a transaction's
bytes, a mapping of names to arrays or safetensors bytes, and a signature's bytes is refused with
its own typed error (`SubmissionFormError`), never an exception that would take other items with it.
Integer payloads must lie in the fixed-point range |x| <= 2**31 - 1 (`PayloadRangeError`; INT32_MIN
has no negation in int32, and the chain's payload check does not judge ranges, so this refusal
carries no evidence).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fedray.core.contracts.rounds import Update
from fedray.core.contracts.slashing import PayloadEvidence, delivery_message
from fedray.core.crypto import DOMAIN_PAYLOAD, is_valid_signature
from fedray.core.transition import CheckedTx, check_tx_stateless
from fedray.core.tx import SignedTx
from fedray.errors import (
    FedrayError,
    PayloadDtypeError,
    PayloadHashError,
    PayloadNonFiniteError,
    PayloadShapeError,
    PayloadValidationError,
)
from fedray.node.mempool import Rejection
from fedray.storage.blobs import BlobStore
from fedray.storage.tensors import TensorSpec, from_safetensors, tensors_digest, validate_payload

PROVABLE = (PayloadHashError, PayloadDtypeError, PayloadShapeError, PayloadNonFiniteError)


class MissingPayloadError(PayloadValidationError):
    """An update transaction arrived without its payload."""

    code = "payload_missing"


class DeclaredSizeError(PayloadValidationError):
    """The transaction's declared size differs from the payload's."""

    code = "payload_declared_size"


class SubmissionFormError(PayloadValidationError):
    """A submitted item is not (transaction bytes, payload or None, signature bytes): a payload
    that is not a mapping of names to numpy arrays or safetensors bytes, a transaction that is not
    bytes."""

    code = "submission_form"


class PayloadRangeError(PayloadValidationError):
    """An integer payload holds a value outside the fixed-point range (|x| <= 2**31 - 1)."""

    code = "payload_range"


FIXED_POINT_BOUND = 2**31 - 1


def _outside_fixed_point(a: np.ndarray) -> bool:
    """Whether an integer array holds a value with |x| > 2**31 - 1. No int32 exceeds the upper
    bound, so an int32 array needs its minimum only (one pass instead of two)."""
    if int(a.min()) < -FIXED_POINT_BOUND:
        return True
    return a.dtype.itemsize > 4 and int(a.max()) > FIXED_POINT_BOUND


@dataclass(frozen=True)
class Admitted:
    raw: bytes
    tx_hash: bytes


@dataclass(frozen=True)
class Refused:
    rejection: Rejection
    evidence: PayloadEvidence | None = None


Payload = Mapping[str, np.ndarray] | bytes | None


class Ingress:
    def __init__(
        self,
        chain_id: str,
        max_tx_bytes: int,
        blobs: BlobStore,
        model: TensorSpec,
        max_payload_bytes: int | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.max_tx_bytes = max_tx_bytes
        self.blobs = blobs
        self.model = model
        self.max_payload_bytes = max_payload_bytes or model.nbytes
        self.pinned_bytes = 0

    def admit(
        self, raw: bytes, payload: Payload = None, delivery_signature: bytes = b"", height: int = 0
    ) -> Admitted | Refused:
        try:
            if not isinstance(raw, bytes):
                raise SubmissionFormError(f"a transaction is bytes, not {type(raw).__name__}")
            checked = check_tx_stateless(raw, self.chain_id, self.max_tx_bytes)
        except FedrayError as exc:
            return Refused(Rejection.of(None, exc, height))
        return self.admit_checked(checked, payload, delivery_signature, height)

    def admit_checked(
        self,
        checked: CheckedTx,
        payload: Payload = None,
        delivery_signature: bytes = b"",
        height: int = 0,
    ) -> Admitted | Refused:
        """`admit` after the stateless rules, signature included (`check_tx_stateless` made
        `checked`, here or in a `BatchVerifier`): the payload's rules and pinning."""
        stx = checked.stx
        try:
            if isinstance(checked.payload, Update):
                evidence = self._pin(stx, checked.payload, payload, delivery_signature)
                if evidence is not None:
                    return evidence
            return Admitted(stx.raw, stx.hash)
        except FedrayError as exc:
            return Refused(Rejection.of(stx, exc, height))

    def _arrays(self, payload: Payload) -> Mapping[str, np.ndarray]:
        """The payload as named arrays, or a typed refusal of its form (no evidence: nothing a
        client signed can be recomputed from it)."""
        if isinstance(payload, bytes | bytearray | memoryview):
            return from_safetensors(bytes(payload), self.max_payload_bytes)
        if not isinstance(payload, Mapping):
            raise SubmissionFormError(
                f"a payload is a mapping of names to arrays, not {type(payload).__name__}"
            )
        if not all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in payload.items()):
            raise SubmissionFormError("a payload maps tensor names (str) to numpy arrays")
        if any(v.dtype.hasobject for v in payload.values()):
            raise SubmissionFormError("a payload holds no object arrays")
        return payload

    def _pin(
        self, stx: SignedTx, update: Update, payload: Payload, delivery_signature: bytes
    ) -> Refused | None:
        if payload is None:
            raise MissingPayloadError("update transaction without its payload")
        tensors = self._arrays(payload)
        try:
            arrays = validate_payload(
                tensors, update.payload_hash, self.model, self.max_payload_bytes
            )
        except PROVABLE as exc:
            return Refused(
                Rejection.of(stx, exc, 0),
                self._evidence(stx, update, tensors, delivery_signature),
            )
        for name, a in arrays.items():  # |value| <= bound, without a widened copy
            if a.dtype.kind == "i" and a.size and _outside_fixed_point(a):
                raise PayloadRangeError(f"tensor {name!r} is outside the fixed-point range")
        size = sum(a.nbytes for a in arrays.values())
        if update.size != size:
            raise DeclaredSizeError(f"declared size {update.size}, payload has {size} bytes")
        if not self.blobs.has(update.payload_hash):
            self.blobs.put(arrays, update.payload_hash)  # validate_payload checked the digest
            self.pinned_bytes += size
        return None

    def _evidence(
        self, stx: SignedTx, update: Update, payload: Mapping[str, np.ndarray], signature: bytes
    ) -> PayloadEvidence | None:
        """Evidence if the client signed what it delivered; the malformed payload is kept so
        that other validators' `payload_check` can confirm it."""
        try:
            delivered = tensors_digest(payload)
        except Exception:  # arrays with no canonical digest (validate_payload said so): no proof
            return None
        message = delivery_message(update.round, delivered)
        if not isinstance(signature, bytes) or not is_valid_signature(
            stx.tx.sender, DOMAIN_PAYLOAD, self.chain_id, message, signature
        ):
            return None
        if delivered == update.payload_hash and not self.blobs.has(delivered):
            self.blobs.put(dict(payload))  # content-addressed: stored under the signed hash
        return PayloadEvidence(stx.raw, delivered, signature)
