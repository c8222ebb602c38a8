"""FedAvg: the sample-weighted mean of the updates, exact in integers.

delta = sum_k n_k q_k / sum_k n_k, computed in int64 (bound: sum n_k <= MAX_TOTAL_SAMPLES, so
|sum n_k q_k| < 2**63) and rounded half to even. With `weighted=False` every update weighs 1.
Every update is accepted; its verdict weight is n_k / sum n in units of 2**-16 (half to even).

Ignores robustness entirely: one large update moves the mean arbitrarily (that is the baseline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedray.aggregation.base import (
    WEIGHT_ONE,
    AggregationResult,
    ClientDelta,
    Verdict,
    check_config_fields,
)
from fedray.aggregation.fixedpoint import make_batch, round_half_even, weighted_mean


@dataclass(frozen=True)
class FedAvgConfig:
    weighted: bool = True  # weight by n_samples (FedAvg); False: plain mean

    def __post_init__(self) -> None:
        check_config_fields(self)


@dataclass(frozen=True)
class FedAvg:
    config: FedAvgConfig = FedAvgConfig()
    threads: int = 1  # local speed knob; results do not depend on it

    name: ClassVar[str] = "fedavg"

    def aggregate(
        self, updates: Sequence[ClientDelta], state: Mapping[str, np.ndarray] | None = None
    ) -> AggregationResult:
        batch = make_batch(updates)
        ns = [u.n_samples if self.config.weighted else 1 for u in batch.updates]
        delta = weighted_mean(batch, range(batch.k), ns, self.threads)
        total = sum(ns)
        verdicts = tuple(
            Verdict(key, True, False, False, round_half_even(n * WEIGHT_ONE, total))
            for key, n in zip(batch.keys, ns, strict=True)
        )
        return AggregationResult(delta, verdicts, {})  # stateless: a stale center is dropped
