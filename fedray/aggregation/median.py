"""Coordinate-wise median, exact in integers.

For each coordinate the K values are sorted (int32, (coordinates, K) layout per chunk). Odd K: the
middle value. Even K: the two middle values are added in int64 and halved, rounded half to even.
Every update is accepted with the nominal weight 1/K (2**-16 units, half to even); the median
makes no per-update decision, so `score` is 0.

Ignores sample counts: a client cannot buy influence by claiming more samples.
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
class MedianConfig:
    """The coordinate-wise median has no parameters."""

    def __post_init__(self) -> None:
        check_config_fields(self)


@dataclass(frozen=True)
class Median:
    config: MedianConfig = MedianConfig()
    threads: int = 1  # local speed knob; results do not depend on it

    name: ClassVar[str] = "median"

    def aggregate(
        self, updates: Sequence[ClientDelta], state: Mapping[str, np.ndarray] | None = None
    ) -> AggregationResult:
        batch = make_batch(updates)
        k, outs = batch.k, batch.outputs()

        def chunk(c: Chunk) -> None:
            t, a, b = c
            block = sorted_block(batch, c)
            if k % 2:
                outs[t][a:b] = block[:, k // 2]
            else:
                pair = np.add(block[:, k // 2 - 1], block[:, k // 2], dtype=np.int64)
                outs[t][a:b] = div_round_half_even(pair, 2)

        run_chunks(chunk, batch.plan(ORDER_CHUNK), self.threads)
        weight = round_half_even(WEIGHT_ONE, k)
        verdicts = tuple(Verdict(key, True, False, False, weight) for key in batch.keys)
        return AggregationResult(batch.to_tensors(outs), verdicts, {})
