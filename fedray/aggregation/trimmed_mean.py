"""Coordinate-wise trimmed mean, exact in integers.

With K updates, b = floor(beta * K) (beta read exactly as a binary fraction) values are dropped
at each end of every coordinate's sorted list; the K - 2b middle values are summed in int64 and
divided by K - 2b, rounded half to even. beta = 0 is the plain mean; beta < 1/2 keeps at least one
value. Every update is accepted with the nominal weight 1/K; trimming is per coordinate, so no
update is rejected as a whole and `score` is 0.

Ignores sample counts (as the median does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import numpy as np

from fedray.aggregation.base import (
    WEIGHT_ONE,
    AggregationResult,
    ClientDelta,
    Verdict,
    check_config_fields,
    config_error,
)
from fedray.aggregation.fixedpoint import (
    ORDER_CHUNK,
    Chunk,
    div_round_half_even,
    make_batch,
    round_half_even,
    run_chunks,
    sorted_block,
)


@dataclass(frozen=True)
class TrimmedMeanConfig:
    beta: float = 0.1  # fraction trimmed at each end, in [0, 0.5)

    def __post_init__(self) -> None:
        check_config_fields(self)
        if not 0.0 <= self.beta < 0.5:
            raise config_error(self, "beta", "must be in [0, 0.5)")

    def trimmed(self, k: int) -> int:
        """Values dropped at each end for K updates: floor(beta * K), exact."""
        return math.floor(Fraction(self.beta) * k)


@dataclass(frozen=True)
class TrimmedMean:
    config: TrimmedMeanConfig = TrimmedMeanConfig()
    threads: int = 1  # local speed knob; results do not depend on it

    name: ClassVar[str] = "trimmed_mean"

    def aggregate(
        self, updates: Sequence[ClientDelta], state: Mapping[str, np.ndarray] | None = None
    ) -> AggregationResult:
        batch = make_batch(updates)
        k = batch.k
        b = self.config.trimmed(k)
        kept = k - 2 * b  # >= 1 since beta < 1/2
        outs = batch.outputs()

        def chunk(c: Chunk) -> None:
            t, lo, hi = c
            middle = sorted_block(batch, c)[:, b : k - b].astype(np.int64)
            # einsum's row sums beat both column adds and sum(axis=1) on short rows here
            outs[t][lo:hi] = div_round_half_even(np.einsum("ij->i", middle), kept)

        run_chunks(chunk, batch.plan(ORDER_CHUNK), self.threads)
        weight = round_half_even(WEIGHT_ONE, k)
        verdicts = tuple(Verdict(key, True, False, False, weight) for key in batch.keys)
        return AggregationResult(batch.to_tensors(outs), verdicts, {})
