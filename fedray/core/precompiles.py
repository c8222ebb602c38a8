"""Precompile interfaces: computations the replicated transition needs but the core cannot do itself.

Closing a federated round aggregates tensors, which needs numpy; the core stays free of it by
declaring this interface (as Ethereum declares precompiled contracts) and receiving an implementation
in `BlockEnv.precompiles["aggregation"]`. `fedray/node/precompile.py` implements it over the blob
store with `fedray.aggregation`; core tests pass a small fake. Requests and outcomes are integers and
digests only, so they hash canonically and every validator can compare them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fedray.core.codec import Encodable, Signed
from fedray.core.encoding import hash_value

AGGREGATION = "aggregation"


@dataclass(frozen=True)
class AggregationRequest(Encodable):
    """Aggregate the round's updates into the global model.

    updates: (key, payload hash, sample count) sorted by key, the update transaction's hash (unique
      per update, whereas two free riders may submit the same all-zero payload).
    rule / rule_config: strategy name and its canonical JSON config, from chain parameters.
    state_hash: digest of the strategy state blob (server momentum), b"" for none.
    flag_params: thresholds of the contribution flags in basis points, from chain parameters:
      (cos_low, cos_high, norm_ratio, uncorrelated, copy); see `FLAG_*`.
    """

    round: int
    rule: str
    rule_config: str
    global_hash: bytes
    state_hash: bytes
    updates: tuple[tuple[bytes, bytes, int], ...]
    flag_params: tuple[int, int, int, int, int] = (0, 10_000, 100_000, 500, 9_990)

    def hash(self) -> bytes:
        return hash_value(self.to_canonical())


# Contribution flags: what the precompile noticed about an update (exact integer tests).
FLAG_REJECTED = 1  # the robust rule gave it no weight
FLAG_COS_LOW = 2  # cosine to the round's aggregate below flag_params[0]
FLAG_COS_HIGH = 4  # ... or above flag_params[1] (suspiciously close to the aggregate)
FLAG_NORM = 8  # norm above r x the round's median norm, r = flag_params[2]
FLAG_UNCORRELATED = 16  # |cosine| with every other update below flag_params[3] (noise)
FLAG_ZERO = 32  # an all-zero update
FLAG_NEAR_COPY = 64  # cosine above flag_params[4] with another update of the round (collusion)
SUSPICIOUS = (
    FLAG_COS_LOW | FLAG_COS_HIGH | FLAG_NORM | FLAG_UNCORRELATED | FLAG_ZERO | FLAG_NEAR_COPY
)
"""Flags that count against a client (k of the last w rounds); FLAG_REJECTED alone does not,
since selection rules such as Krum reject most honest updates every round."""
FREE_RIDING = FLAG_ZERO | FLAG_UNCORRELATED


@dataclass(frozen=True)
class UpdateVerdict:
    """The strategy's decision on one update, in fixed point (weight and score in 2**-16 units),
    its contribution flags and its agreement (cosine to the aggregate, 2**-16 units, in
    [-65536, 65536]). `key` is the update's key in the request."""

    key: bytes
    accepted: bool
    clipped: bool
    rejected: bool
    weight: int
    score: Signed
    flags: int = 0
    agreement: Signed = 0


@dataclass(frozen=True)
class AggregationOutcome(Encodable):
    """The new global model digest, the new strategy-state digest, one verdict per update (in the
    request's order)."""

    global_hash: bytes
    state_hash: bytes
    verdicts: tuple[UpdateVerdict, ...]


PAYLOAD_CHECK = "payload_check"


class PayloadCheckPrecompile(Protocol):
    def check(self, payload_hash: bytes) -> str:
        """The rule a pinned payload breaks ("" if it is a valid update of the model); raises a
        `FedrayError` when the payload is not available here."""
        ...


class AggregationPrecompile(Protocol):
    def aggregate(self, request: AggregationRequest) -> AggregationOutcome:
        """Deterministic: the same request gives the same outcome on every honest validator.
        Raises a `FedrayError` when a payload is unavailable (the block cannot be executed)."""
        ...
