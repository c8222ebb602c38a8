"""An aggregation rule of one's own: fedray's `StrategyFactory` protocol, and its determinism
contract (docs/extending.md). Validators run it on every round's updates and must agree to the bit.

`DropLargest(drop=1)`: sorts the updates by key, drops the `drop` updates with the largest
coordinate (by absolute value; ties go to the larger key), and takes the plain mean of the rest.
Everything is exact integer arithmetic on the int32 fixed-point deltas: int64 sums, and one
division rounded half to even (fedray's rounding rule).
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
    TooFewUpdatesError,
    Verdict,
)
from fedray.aggregation.fixedpoint import div_round_half_even, round_half_even


@dataclass(frozen=True)
class DropLargest:
    drop: int = 1

    name: ClassVar[str] = "drop_largest"

    def __post_init__(self) -> None:
        if not isinstance(self.drop, int) or self.drop < 0:
            raise ValueError(f"drop must be an int >= 0, got {self.drop!r}")

    def aggregate(
        self, updates: Sequence[ClientDelta], state: Mapping[str, np.ndarray] | None = None
    ) -> AggregationResult:
        if len(updates) <= self.drop:
            raise TooFewUpdatesError(f"drop_largest needs more than {self.drop} updates")
        ordered = sorted(updates, key=lambda u: u.key)  # the order every validator sees
        size = [
            max(int(np.abs(a.astype(np.int64)).max()) for a in u.tensors.values()) for u in ordered
        ]
        ranked = sorted(range(len(ordered)), key=lambda i: (size[i], ordered[i].key))
        dropped = set(ranked[len(ordered) - self.drop :])
        kept = [u for i, u in enumerate(ordered) if i not in dropped]
        delta = {}
        for name in ordered[0].tensors:
            total = np.zeros(ordered[0].tensors[name].shape, np.int64)
            for u in kept:
                total += u.tensors[name]
            delta[name] = div_round_half_even(total, len(kept)).astype(np.int32)
        weight = round_half_even(WEIGHT_ONE, len(kept))
        verdicts = tuple(
            Verdict(u.key, i not in dropped, False, i in dropped, 0 if i in dropped else weight)
            for i, u in enumerate(ordered)
        )
        return AggregationResult(delta, verdicts, {})
