"""Deterministic robust aggregation strategies over fixed-point updates (see base.py).

Public API: `make_strategy(name, config, threads=1)` builds a rule from `STRATEGIES`; clients call
`quantize` / `dequantize`; every rule takes `ClientDelta`s and returns an `AggregationResult`.
"""

from fedray.aggregation.base import (
    FRAC_BITS,
    WEIGHT_BITS,
    WEIGHT_ONE,
    AggregationError,
    AggregationResult,
    BoundError,
    ClientDelta,
    DuplicateDeltaError,
    NonFiniteUpdateError,
    SampleCountError,
    Strategy,
    StrategyConfigError,
    TooFewUpdatesError,
    UpdateShapeError,
    Verdict,
)
from fedray.aggregation.fixedpoint import dequantize, quantize, spec_of, validate_updates
from fedray.aggregation.registry import STRATEGIES, make_config, make_strategy

__all__ = [
    "FRAC_BITS",
    "STRATEGIES",
    "WEIGHT_BITS",
    "WEIGHT_ONE",
    "AggregationError",
    "AggregationResult",
    "BoundError",
    "DuplicateDeltaError",
    "NonFiniteUpdateError",
    "SampleCountError",
    "Strategy",
    "StrategyConfigError",
    "TooFewUpdatesError",
    "ClientDelta",
    "UpdateShapeError",
    "Verdict",
    "dequantize",
    "make_config",
    "make_strategy",
    "quantize",
    "spec_of",
    "validate_updates",
]
