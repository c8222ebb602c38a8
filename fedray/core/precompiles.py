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
class FlagParams(Encodable):
    """Thresholds of the contribution flags (`FLAG_*`), in basis points, from chain parameters.

    cos_low / cos_high: cosine to the round's aggregate below / above (10000: off).
    norm_ratio: norm above this x the round's median norm x sqrt(max(1, declared samples / the
      round's median declared samples)).
    noise_z: largest |cosine| with any other update below noise_z / sqrt(P), P the number of model
      parameters: what independent noise shows (its cosine with a fixed vector is about N(0, 1/P)).
    copy: cosine with another update of the round above this.
    opposed_cos / opposed_norm: cosine to the aggregate below -opposed_cos and norm above
      opposed_norm x the same allowance, together.
    """

    cos_low: int = 0
    cos_high: int = 10_000
    norm_ratio: int = 40_000
    noise_z: int = 40_000
    copy: int = 9_990
    opposed_cos: int = 2_000
    opposed_norm: int = 20_000


@dataclass(frozen=True)
class AggregationRequest(Encodable):
    """Aggregate the round's updates into the global model.

    updates: (key, payload hash, sample count) sorted by key, the update transaction's hash (unique
      per update, whereas two free riders may submit the same all-zero payload).
    rule / rule_config: strategy name and its canonical JSON config, from chain parameters.
    state_hash: digest of the strategy state blob (server momentum), b"" for none.
    flag_params: thresholds of the contribution flags, from chain parameters.
    max_norm: the longest update differential privacy lets an honest client send, in 2**-16
      units (`contracts.privacy.norm_bound`); longer ones are refused (FLAG_OVER_NORM). 0: none.
    """

    round: int
    rule: str
    rule_config: str
    global_hash: bytes
    state_hash: bytes
    updates: tuple[tuple[bytes, bytes, int], ...]
    flag_params: FlagParams = FlagParams()
    max_norm: int = 0

    def hash(self) -> bytes:
        return hash_value(self.to_canonical())


# Contribution flags: what the precompile noticed about an update (exact integer tests). Which of
# them a client can produce while honest was measured (docs/incentives.md), and that decides what
# each one may cost it: see WITHHOLD, EVIDENCE and FREE_RIDING.
FLAG_REJECTED = 1  # the robust rule gave it no weight
FLAG_COS_LOW = 2  # cosine to the round's aggregate below cos_low
FLAG_COS_HIGH = 4  # ... or above cos_high (suspiciously close to the aggregate)
FLAG_NORM = 8  # norm above norm_ratio x the round's median norm (more with more declared data)
FLAG_UNCORRELATED = 16  # |cosine| with every other update at the level of noise (below z/sqrt(P))
FLAG_ZERO = 32  # an all-zero update
FLAG_NEAR_COPY = 64  # cosine above `copy` with another update of the round (collusion)
FLAG_OPPOSED = 128  # against the aggregate (cosine < -opposed_cos) and long (> opposed_norm)
FLAG_OVER_NORM = 256  # longer than the DP norm bound: not the mechanism's output (refused)
FREE_RIDING = FLAG_ZERO
"""Provable: an all-zero update trained nothing. Penalized every round it happens."""
EVIDENCE = FLAG_UNCORRELATED | FLAG_NEAR_COPY
"""Statistical evidence that slashes, in k of the client's last w rounds (slashing contract):
updates at the noise level with every other update (an independent random vector stays below
z / sqrt(P) with all 19 others of a round except about once in 800 rounds at z = 4, while honest
updates were measured at 5-10 times the noise level or more), and near copies (two updates trained
apart never came near a cosine of 0.999; the honest maximum measured is in docs/incentives.md).
Direction and length are *not* evidence: over 100 rounds at Dirichlet alpha 0.1 an honest client
whose labels the model kept forgetting sent long updates against the aggregate in 5 of 26 rounds,
as a sign flipper does (docs/incentives.md)."""
OVER_NORM = FLAG_OVER_NORM
"""Provable: the payload's exact norm exceeds the chain's bound. Slashed every round it happens."""
WITHHOLD = FREE_RIDING | EVIDENCE | FLAG_NORM | FLAG_OPPOSED | FLAG_COS_HIGH | OVER_NORM
"""Flags that withhold the round's reward (statistical signals may cost a reward, never stake).
FLAG_COS_LOW and FLAG_REJECTED do not: honest clients with rare labels point away from the
aggregate in many rounds (their contribution, and so that share of the reward, is then simply not
positive), and selection rules such as Krum reject most honest updates every round."""


@dataclass(frozen=True)
class UpdateVerdict:
    """The strategy's decision on one update, in fixed point (weight and score in 2**-16 units),
    its contribution flags, its agreement (cosine to the aggregate, 2**-16 units, in
    [-65536, 65536]) and its contribution (the part of the round's step it supplied, 2**-16
    units: weight x <update, aggregate> / |aggregate|^2, its leave-one-out and Shapley value in
    the linear game of the step; see `fedray.node.scoring`). `key` is the update's key in the
    request."""

    key: bytes
    accepted: bool
    clipped: bool
    rejected: bool
    weight: int
    score: Signed
    flags: int = 0
    agreement: Signed = 0
    contribution: Signed = 0


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
