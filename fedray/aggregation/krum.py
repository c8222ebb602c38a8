"""Krum and Multi-Krum (Blanchard et al. 2017), with exact integer distances.

Squared distances come from the exact Gram matrix: d_ij = G_ii + G_jj - 2 G_ij in Python ints.
ClientDelta i's score is the sum of its K - f - 2 smallest distances to the others; updates are ranked
by (score, position in key order), so ties break by key and nothing is left to chance. Krum keeps
the best update; Multi-Krum keeps the best min(m, K - f) and takes their plain mean, rounded half
to even. Needs K >= 2f + 3 (the rule's own condition), else `TooFewUpdatesError`.

Verdicts: selected updates are accepted with weight 1/m; the others are rejected with weight 0.
score = (K - 1 - rank) / (K - 1) in 2**-16 units (1.0 for the best, 0 for the worst).

Ignores sample counts.
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
    check_config_fields,
    config_error,
)
from fedray.aggregation.dots import exact_gram
from fedray.aggregation.fixedpoint import make_batch, round_half_even, weighted_mean


@dataclass(frozen=True)
class KrumConfig:
    f: int = 1  # Byzantine updates tolerated

    def __post_init__(self) -> None:
        check_config_fields(self)
        if self.f < 0:
            raise config_error(self, "f", "must be >= 0")


@dataclass(frozen=True)
class MultiKrumConfig:
    f: int = 1  # Byzantine updates tolerated
    m: int = 2  # updates averaged (capped at K - f)

    def __post_init__(self) -> None:
        check_config_fields(self)
        if self.f < 0:
            raise config_error(self, "f", "must be >= 0")
        if self.m < 1:
            raise config_error(self, "m", "must be >= 1")


def krum_scores(gram: Sequence[Sequence[int]], f: int) -> list[int]:
    """Each update's Krum score from the exact Gram matrix (Python ints)."""
    k = len(gram)
    if k < 2 * f + 3:
        raise TooFewUpdatesError(f"Krum with f={f} needs at least {2 * f + 3} updates, got {k}")
    neighbours = k - f - 2
    scores = []
    for i in range(k):
        dists = sorted(gram[i][i] + gram[j][j] - 2 * gram[i][j] for j in range(k) if j != i)
        scores.append(sum(dists[:neighbours]))
    return scores


def multi_krum(updates: Sequence[ClientDelta], f: int, m: int, threads: int) -> AggregationResult:
    batch = make_batch(updates)
    k = batch.k
    scores = krum_scores(exact_gram(batch, threads), f)
    ranking = sorted(range(k), key=lambda i: (scores[i], i))
    rank = {i: r for r, i in enumerate(ranking)}
    chosen = sorted(ranking[: min(m, k - f)])
    delta = weighted_mean(batch, chosen, [1] * len(chosen), threads)
    weight = round_half_even(WEIGHT_ONE, len(chosen))
    verdicts = []
    for i, key in enumerate(batch.keys):
        score = round_half_even(WEIGHT_ONE * (k - 1 - rank[i]), k - 1)
        ok = i in chosen
        verdicts.append(Verdict(key, ok, False, not ok, weight if ok else 0, score))
    return AggregationResult(delta, tuple(verdicts), {})


@dataclass(frozen=True)
class Krum:
    config: KrumConfig = KrumConfig()
    threads: int = 1  # local speed knob; results do not depend on it

    name: ClassVar[str] = "krum"

    def aggregate(
        self, updates: Sequence[ClientDelta], state: Mapping[str, np.ndarray] | None = None
    ) -> AggregationResult:
        return multi_krum(updates, self.config.f, 1, self.threads)


@dataclass(frozen=True)
class MultiKrum:
    config: MultiKrumConfig = MultiKrumConfig()
    threads: int = 1  # local speed knob; results do not depend on it

    name: ClassVar[str] = "multi_krum"

    def aggregate(
        self, updates: Sequence[ClientDelta], state: Mapping[str, np.ndarray] | None = None
    ) -> AggregationResult:
        return multi_krum(updates, self.config.f, self.config.m, self.threads)
