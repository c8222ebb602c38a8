"""Precompile interfaces: computations the replicated transition needs but the core cannot do itself.

Closing a federated round aggregates tensors, which needs numpy; the core stays free of it by
declaring this interface (as Ethereum declares precompiled contracts) and receiving an implementation
in `BlockEnv.precompiles["aggregation"]`. `fedray/node/precompile.py` implements it over the blob
store with `fedray.aggregation`; core tests pass a small fake. Requests and outcomes are integers and
digests only, so they hash canonically and every validator can compare them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fedray.core.encoding import hash_value

AGGREGATION = "aggregation"


@dataclass(frozen=True)
class AggregationRequest:
    """Aggregate the round's updates into the global model.

    updates: (payload hash, sample count) sorted by payload hash.
    rule / rule_config: strategy name and its canonical JSON config, from chain parameters.
    state_hash: digest of the strategy state blob (server momentum), b"" for none.
    """

    round: int
    rule: str
    rule_config: str
    global_hash: bytes
    state_hash: bytes
    updates: tuple[tuple[bytes, int], ...]

    def to_canonical(self) -> list[Any]:
        return [self.round, self.rule, self.rule_config, self.global_hash, self.state_hash,
                [[h, n] for h, n in self.updates]]  # fmt: skip

    def hash(self) -> bytes:
        return hash_value(self.to_canonical())


@dataclass(frozen=True)
class UpdateVerdict:
    """The strategy's decision on one update, in fixed point (weight and score in 2**-16 units)."""

    payload_hash: bytes
    accepted: bool
    clipped: bool
    rejected: bool
    weight: int
    score: int

    def to_canonical(self) -> list[Any]:
        return [self.payload_hash, self.accepted, self.clipped, self.rejected, self.weight,
                self.score]  # fmt: skip

    @staticmethod
    def from_canonical(v: Any) -> UpdateVerdict:
        return UpdateVerdict(bytes(v[0]), bool(v[1]), bool(v[2]), bool(v[3]), int(v[4]), int(v[5]))


@dataclass(frozen=True)
class AggregationOutcome:
    """The new global model digest, the new strategy-state digest, one verdict per update (in the
    request's order)."""

    global_hash: bytes
    state_hash: bytes
    verdicts: tuple[UpdateVerdict, ...]

    def to_canonical(self) -> list[Any]:
        return [self.global_hash, self.state_hash, [v.to_canonical() for v in self.verdicts]]

    @staticmethod
    def from_canonical(v: Any) -> AggregationOutcome:
        return AggregationOutcome(
            bytes(v[0]), bytes(v[1]), tuple(UpdateVerdict.from_canonical(x) for x in v[2])
        )


class AggregationPrecompile(Protocol):
    def aggregate(self, request: AggregationRequest) -> AggregationOutcome:
        """Deterministic: the same request gives the same outcome on every honest validator.
        Raises a `FedrayError` when a payload is unavailable (the block cannot be executed)."""
        ...
