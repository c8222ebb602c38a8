"""Who may call what on a validator: capabilities for the operator and the ingress, signed requests
for peers, and which pinned blobs anyone may read.

Ray has no caller identity, so a privileged method takes a capability, a 32-byte secret compared in
constant time. A validator derives its two capabilities from its own key (HMAC-SHA256 of the seed
under a role label), so no secret travels at creation: the operator (the run driver, `ValidatorNet`),
which made the key, derives the same, and hands the ingress capability to that validator's ingress
alone. A client can neither read nor guess one (docs/security.md: what a client holds).

Peers fetch an open round's payloads with a request signed by a validator key (domain
`DOMAIN_BLOB_REQUEST`, with the time, accepted within `REQUEST_WINDOW_MS`). Global models and the
payloads of closed rounds are public (`released`): the chain commits their hashes and anyone may
recompute the aggregation from them.

Ray-free, so the rules are unit-tested without a cluster.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fedray.core.contracts.rounds import RoundsState
from fedray.core.crypto import PrivateKey, is_valid_signature
from fedray.core.encoding import decode, encode
from fedray.core.state import State
from fedray.errors import EncodingError, FedrayError

OPERATOR, INGRESS = "operator", "ingress"
DOMAIN_BLOB_REQUEST = "fedray/blob-request/v1"
REQUEST_WINDOW_MS = 120_000  # a signed blob request is good this long either side of our clock
CAPABILITY_SIZE = 32


class AccessDeniedError(FedrayError):
    """The caller lacks the capability or the signature a method requires."""

    code = "access_denied"


def capability(key: PrivateKey, role: str) -> bytes:
    """The capability `role` of the validator holding `key`."""
    if role not in (OPERATOR, INGRESS):
        raise AccessDeniedError(f"no such role {role!r}")
    return hmac.new(key.seed, f"fedray/capability/{role}/v1".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Capabilities:
    """A validator's two capabilities: the operator's and its ingress's."""

    operator: bytes
    ingress: bytes

    @staticmethod
    def of(key: PrivateKey) -> Capabilities:
        return Capabilities(capability(key, OPERATOR), capability(key, INGRESS))


def require(expected: bytes, presented: object, what: str) -> None:
    """Raise `AccessDeniedError` unless `presented` is `expected` (constant-time comparison)."""
    if not isinstance(presented, bytes) or not hmac.compare_digest(expected, presented):
        raise AccessDeniedError(f"{what}: wrong or missing capability")


def sign_blob_request(key: PrivateKey, chain_id: str, digest: bytes, now_ms: int) -> bytes:
    """A validator's request for the blob `digest`, as canonical bytes."""
    message = encode([digest, now_ms])
    signature = key.sign(DOMAIN_BLOB_REQUEST, chain_id, message)
    return encode([digest, now_ms, key.public_key, signature])


def check_blob_request(
    raw: object, state: State, digest: bytes, now_ms: int, window_ms: int = REQUEST_WINDOW_MS
) -> bytes:
    """The requesting validator's key, if `raw` is a fresh request for `digest` signed by a member
    of the current or the previous validator set; else `AccessDeniedError`."""
    if not isinstance(raw, bytes) or not raw:
        raise AccessDeniedError("an open round's payload needs a signed validator request")
    try:
        fields = decode(raw)
    except EncodingError as exc:
        raise AccessDeniedError(f"malformed blob request: {exc}") from None
    if not (isinstance(fields, list) and len(fields) == 4):
        raise AccessDeniedError("a blob request is [digest, time_ms, key, signature]")
    asked, at_ms, requester, signature = fields
    if asked != digest or not isinstance(at_ms, int) or isinstance(at_ms, bool):
        raise AccessDeniedError("the blob request names another blob")
    if abs(now_ms - at_ms) > window_ms:
        raise AccessDeniedError("the blob request is stale")
    if not isinstance(requester, bytes) or not isinstance(signature, bytes):
        raise AccessDeniedError("the blob request's key and signature are bytes")
    if requester not in state.validators and requester not in state.last_validators:
        raise AccessDeniedError("the blob request is not from a validator")
    message = encode([digest, at_ms])
    if not is_valid_signature(requester, DOMAIN_BLOB_REQUEST, state.chain_id, message, signature):
        raise AccessDeniedError("the blob request's signature does not verify")
    return requester


def released(state: State, digest: bytes) -> bool:
    """True if anyone may read the blob `digest`: a global model the chain recorded, or a payload of
    a closed round (never one of the open round, pinned or merely submitted)."""
    rs: RoundsState = state.section("rounds")
    if digest == rs.global_hash or digest in rs.used_payloads:
        return True
    return digest in released_history(rs)


_RELEASED = "_fedray_released"


def released_history(rs: RoundsState) -> frozenset[bytes]:
    """What the closed rounds released beyond `used_payloads`: every global model a round started
    from or made, and the all-zero update if a round used it. Computed once per (immutable) rounds
    section and kept on it: anyone may ask `get_blob` for any digest, and a walk of every closed
    round's updates per request (1.1 ms at 400 rounds of 100) let a caller buy a validator's CPU
    cheaply; now a stream of such requests costs one walk per committed block."""
    cached: frozenset[bytes] | None = rs.__dict__.get(_RELEASED)
    if cached is None:
        models = {d for r in rs.results for d in (r.global_before, r.global_after)}
        zero = any(u.payload_hash == rs.zero_hash for r in rs.results for u in r.updates)
        cached = frozenset(models | ({rs.zero_hash} if zero else set()))
        object.__setattr__(rs, _RELEASED, cached)
    return cached
