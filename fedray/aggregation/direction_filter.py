"""Direction filter: drop the updates that point away from the coordinate-wise median, then let an
inner robust rule aggregate the rest.

Why: centered clipping caps each update's *length* at the radius but keeps its *direction*, so f
aligned attackers (sign flip, IPM at any epsilon) still pull every round by about f/K x radius the
wrong way; measured here, that cost up to 4.9 points on IID data and 9.5 on Dirichlet(0.5)
(`docs/robustness.md`). An update whose inner product with the round's coordinate-wise median is
not positive contributes, to first order, against the federation's direction; dropping it removes
such attacks whatever their scale, and leaves ALIE-like updates (near the mean) to the inner rule.

Exact and order-free: the median is the `median` rule's (int32, half to even), inner products are
exact Python ints (`dots.exact_cross`); ties (an inner product of exactly 0) are dropped. When fewer
than `min_keep` updates would remain, nothing is dropped (the inner rule alone decides), so the
filter can never empty a round. Dropped updates get a `rejected` verdict with weight 0; the others
keep the inner rule's verdicts; the state is the inner rule's.

Ignores: cosine thresholds other than 0 (the slashing flags handle degrees).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from fedray.aggregation.base import (
    WEIGHT_ONE,
    AggregationResult,
    ClientDelta,
    Strategy,
    Verdict,
    check_config_fields,
    config_error,
)
from fedray.aggregation.dots import exact_cross, exact_sqnorms
from fedray.aggregation.fixedpoint import make_batch, round_half_even
from fedray.aggregation.median import Median, MedianConfig

INNER_DEFAULTS: dict[str, dict[str, Any]] = {"centered_clipping": {"radius": 2.0}}
"""The inner rule's config when none is given: behind the filter, centered clipping at 2x the
median distance (at 1x it clipped half the honest updates every round, which cost 1-4 points of
accuracy at Dirichlet alpha 0.1 against FedAvg; docs/incentives.md)."""


@dataclass(frozen=True)
class DirectionFilterConfig:
    inner: str = "centered_clipping"  # registered name of the rule applied to the kept updates
    inner_config: Any = None  # the inner rule's config (None: INNER_DEFAULTS, else its defaults)
    min_keep: int = 3  # never keep fewer updates than this (then nothing is dropped)
    norm_ratio: float = 10.0  # drop updates longer than this x the median norm (0: off)
    direction: bool = True  # drop updates whose inner product with the median is not positive ...
    direction_norm_ratio: float = (
        3.0  # ... and that are longer than this x the median norm (0: any)
    )

    def __post_init__(self) -> None:
        check_config_fields(self)
        if self.min_keep < 1:
            raise config_error(self, "min_keep", "must be >= 1")
        for name in ("norm_ratio", "direction_norm_ratio"):
            if getattr(self, name) < 0:
                raise config_error(self, name, "must be >= 0")


@dataclass(frozen=True)
class DirectionFilter:
    config: DirectionFilterConfig
    inner: Strategy  # built from config.inner / config.inner_config by the registry
    threads: int = 1  # local speed knob; results do not depend on it

    name: ClassVar[str] = "direction_filter"

    def aggregate(
        self, updates: Sequence[ClientDelta], state: Mapping[str, np.ndarray] | None = None
    ) -> AggregationResult:
        cfg, batch = self.config, make_batch(updates)
        kept = list(range(batch.k))
        sq: list[int] = []
        if cfg.norm_ratio > 0 or (cfg.direction and cfg.direction_norm_ratio > 0):
            sq = exact_sqnorms(batch, self.threads)
        med = sorted(sq)[(batch.k - 1) // 2] if sq else 0

        def longer(i: int, ratio: float) -> bool:
            # |x|^2 * 2^32 > (ratio * 2^16)^2 * median(|x|^2): exact, ratio rounded to 2^-16
            r = round_half_even(int(ratio * WEIGHT_ONE * 2), 2)
            return sq[i] * WEIGHT_ONE * WEIGHT_ONE > r * r * med

        if cfg.direction:
            median = Median(MedianConfig(), self.threads).aggregate(batch.updates).delta
            reference = [np.ascontiguousarray(median[name]).reshape(-1) for name in batch.names]
            dots = [row[0] for row in exact_cross(batch, [reference], self.threads)]
            kept = [
                i
                for i in kept
                if dots[i] > 0
                or (cfg.direction_norm_ratio > 0 and not longer(i, cfg.direction_norm_ratio))
            ]
        if cfg.norm_ratio > 0:
            kept = [i for i in kept if not longer(i, cfg.norm_ratio)]
        if len(kept) < min(cfg.min_keep, batch.k):
            kept = list(range(batch.k))
        inner = self.inner.aggregate([batch.updates[i] for i in kept], state)
        by_key = {v.key: v for v in inner.verdicts}
        verdicts = tuple(
            by_key.get(key) or Verdict(key, False, False, True, 0) for key in batch.keys
        )
        return AggregationResult(inner.delta, verdicts, inner.state)
