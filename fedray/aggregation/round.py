"""One aggregation round, exactly as a validator runs it when a round closes on chain.

`aggregate_round(global_model, deltas, rule, config, state)`:
1. checks every delta against the global model's layout (typed errors before any arithmetic);
2. runs the configured rule; a rule that needs more updates than the round has (Krum needs
   K >= 2f + 3) falls back, deterministically, to the coordinate-wise median instead of stalling
   the chain, and keeps its state for the next round;
3. adds the aggregate delta to the global model in int32 fixed point, saturating at the int32 range
   (`apply_delta`), so the new model is exact and identical on every machine.

The aggregation precompile (`fedray.node.precompile`), the in-process federation and every
experiment call this one function, so a published figure describes what the chain computes.

Ignores: where payloads come from (blob store, memory), contribution flags (`fedray.node.scoring`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fedray.aggregation.base import AggregationResult, ClientDelta, TooFewUpdatesError
from fedray.aggregation.fixedpoint import spec_of, validate_updates
from fedray.aggregation.registry import make_strategy

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
FALLBACK_RULE = "median"


@dataclass(frozen=True)
class RoundAggregate:
    """The new global model (int32 fixed point), the rule's result (aggregate delta, one verdict
    per delta sorted by key, state for the next round), and whether the median fallback ran."""

    new_global: dict[str, np.ndarray]
    result: AggregationResult
    fallback: bool = False


def apply_delta(
    global_model: Mapping[str, np.ndarray], delta: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """global + delta in int32 fixed point, saturating at the int32 range (exact, deterministic)."""
    out = {}
    for name, g in global_model.items():
        total = g.astype(np.int64) + delta[name].astype(np.int64)
        out[name] = np.clip(total, INT32_MIN, INT32_MAX).astype(np.int32)
    return out


def aggregate_round(
    global_model: Mapping[str, np.ndarray],
    deltas: Sequence[ClientDelta],
    rule: str,
    config: Mapping[str, Any] | object | None = None,
    state: Mapping[str, np.ndarray] | None = None,
    *,
    threads: int = 1,
) -> RoundAggregate:
    """Aggregate one round's `deltas` into the next global model (see the module docstring)."""
    validate_updates(deltas, spec_of(global_model))
    strategy = make_strategy(rule, config, threads=threads)
    fallback = False
    try:
        result = strategy.aggregate(deltas, state)
    except TooFewUpdatesError:
        median = make_strategy(FALLBACK_RULE, threads=threads).aggregate(deltas, None)
        result = replace(median, state=dict(state) if state else {})
        fallback = True
    return RoundAggregate(apply_delta(global_model, result.delta), result, fallback)
