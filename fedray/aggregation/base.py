"""The aggregation interface: fixed-point updates in, a fixed-point aggregate and per-update verdicts out.

Every strategy works on model *deltas* in signed fixed point (int32, value = q * 2**-FRAC_BITS, so
|value| < 2**(31 - FRAC_BITS) = 128). Clients quantize before hashing and signing, so the payload that
is hashed is the canonical form and validators never see floats. A strategy is a pure function of the
*multiset* of updates: it sorts them by `ClientDelta.key` (the payload or transaction hash) first, reduces
exactly in integers, and rounds every float decision (clip factors, weights, selections) to fixed point,
so every honest validator on any machine gets byte-identical results.

Strategies may carry state across rounds (server momentum): it is a dict of int arrays that the chain
stores by hash, passed in and returned, never hidden in the object.

Deliberately ignored here: transport, hashing of payloads, Ray. See `fedray/aggregation/fixedpoint.py`
for quantization and exact integer reductions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fedray.errors import ConfigError, FedrayError

FRAC_BITS = 24
"""Fixed-point fraction bits: one unit is 2**-24 (about 6e-8)."""
SCALE = 1 << FRAC_BITS
INT32_MAX = (1 << 31) - 1
WEIGHT_BITS = 16
"""Fraction bits of verdict weights and factors: weight 1.0 is 1 << 16."""
WEIGHT_ONE = 1 << WEIGHT_BITS

Tensors = Mapping[str, np.ndarray]


class AggregationError(FedrayError):
    """Updates cannot be aggregated (none given, inconsistent, or rejected before arithmetic)."""

    code = "aggregation"


class UpdateShapeError(AggregationError):
    """An update's tensor names, dtypes or shapes differ from the reference model's."""

    code = "bad_shape"


class NonFiniteUpdateError(AggregationError):
    """An update holds NaN or infinite values (float input) or is out of the fixed-point range."""

    code = "non_finite"


class DuplicateDeltaError(AggregationError):
    """Two updates of one aggregation share a key (the same payload would count twice)."""

    code = "duplicate_delta"


class SampleCountError(AggregationError):
    """An update's `n_samples` is not a positive int, or the round's total exceeds `MAX_TOTAL_SAMPLES`."""

    code = "bad_sample_count"


class TooFewUpdatesError(AggregationError):
    """A rule needs more updates than were given (none at all, or Krum with K < 2f + 3)."""

    code = "too_few_updates"


class BoundError(AggregationError):
    """A proven no-overflow bound of the integer arithmetic would not hold (too many updates,
    parameters or samples); raised before the arithmetic, never silently wrapped."""

    code = "arithmetic_bound"


class StrategyConfigError(AggregationError, ConfigError):
    """A strategy name or config key is unknown, or a config value has the wrong type or range."""

    code = "bad_strategy_config"


MAX_UPDATES = (1 << 15) - 1
"""Most updates one aggregation takes: keeps K * 2**16 * 2**32 (clip-weighted sums) below 2**63."""
MAX_TOTAL_SAMPLES = (1 << 32) - 1
"""Largest sum of `n_samples` per round: keeps sum(n_k * q_k) with |q_k| <= 2**31 below 2**63."""


@dataclass(frozen=True)
class ClientDelta:
    """One client's model delta as an aggregation rule sees it (the chain's `update` transaction,
    `fedray.core.contracts.rounds.Update`, only names its hash).

    key: bytes that order updates deterministically (on chain, the update transaction's hash);
      unique per aggregation.
    tensors: parameter name -> int32 fixed-point delta, same names/shapes as the model.
    n_samples: the client's claimed local sample count (> 0), used by sample-weighted rules.
    """

    key: bytes
    tensors: Tensors
    n_samples: int


@dataclass(frozen=True)
class Verdict:
    """What a strategy decided about one update; incentives and slashing read it.

    weight: the update's share in the aggregate in units of 2**-16 (0 when rejected).
    score: a rule-specific fixed-point quality score in units of 2**-16 (higher is better), e.g.
      the clip factor for centered clipping or the negative Krum score rank; 0 when not defined.
    """

    key: bytes
    accepted: bool
    clipped: bool
    rejected: bool
    weight: int
    score: int = 0


@dataclass(frozen=True)
class AggregationResult:
    """The aggregate delta (int32 fixed point, same layout as the inputs) and one verdict per update,
    in the deterministic order (sorted by key). `state` is the strategy state for the next round."""

    delta: dict[str, np.ndarray]
    verdicts: tuple[Verdict, ...]
    state: dict[str, np.ndarray] = field(default_factory=dict)


class Strategy(Protocol):
    """An aggregation rule. Implementations are small frozen dataclasses built from a typed config."""

    name: str

    def aggregate(
        self,
        updates: Sequence[ClientDelta],
        state: Mapping[str, np.ndarray] | None = None,
    ) -> AggregationResult:
        """Aggregate `updates` (any order); raise an `AggregationError` subclass before any
        arithmetic when an update is malformed."""
        ...


_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
}


def check_config_fields(config: object) -> None:
    """Type-check a flat config dataclass (fields annotated int, float, bool or str); coerce int to
    float where a float is declared. Called from each config's `__post_init__`."""
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        allowed = _SCALAR_TYPES.get(str(f.type))
        if allowed is None:
            continue  # nested or free-form fields are checked by their owner
        value = getattr(config, f.name)
        # bool is an int subclass: reject it where a number is declared, and numbers where a bool is.
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise StrategyConfigError(
                f"{type(config).__name__}.{f.name} must be {f.type}, got {type(value).__name__} {value!r}"
            )
        if f.type == "float":
            object.__setattr__(config, f.name, float(value))


def config_error(config: object, field_name: str, why: str) -> StrategyConfigError:
    """A `StrategyConfigError` naming the config class, the field and its value."""
    value = getattr(config, field_name)
    return StrategyConfigError(f"{type(config).__name__}.{field_name}={value!r}: {why}")
