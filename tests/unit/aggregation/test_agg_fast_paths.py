"""The vectorised per-coordinate rules (FedAvg, median, trimmed mean) against Python-int references.

Inputs span several of each plan's chunks (the order statistics cut at ORDER_CHUNK, the sums at
SUM_CHUNK, with a short last chunk and a second tensor), hold ties (values drawn from a handful)
and the int32 extremes, and come in shuffled order: the fast paths must give exactly the bytes of
the definitions, at any thread count.
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest

from fedray.aggregation import fixedpoint as fp
from fedray.aggregation.base import ClientDelta
from fedray.aggregation.fedavg import FedAvg, FedAvgConfig
from fedray.aggregation.median import Median
from fedray.aggregation.trimmed_mean import TrimmedMean, TrimmedMeanConfig

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
SIZE = 2 * fp.SUM_CHUNK + 2 * fp.ORDER_CHUNK + 9  # several chunks of both plans, the last short


def _updates(k: int, seed: int) -> list[ClientDelta]:
    rng = np.random.default_rng(seed)
    ups = []
    for i in range(k):
        w = rng.integers(I32_MIN, I32_MAX, size=SIZE, endpoint=True, dtype=np.int64)
        ties = rng.random(SIZE) < 0.4  # a third of the coordinates from five values: many ties
        w[ties] = rng.choice([I32_MIN, -1, 0, 1, I32_MAX], size=int(ties.sum()))
        w[: 2 * k] = I32_MAX if i % 2 else I32_MIN  # extremes at both ends, everyone alike
        b = rng.integers(-5, 5, size=(3, 2), endpoint=True).astype(np.int32)
        ups.append(ClientDelta(rng.bytes(8), {"w": w.astype(np.int32), "b": b}, i * 37 + 1))
    random.Random(seed).shuffle(ups)
    return ups


def _columns(ups: list[ClientDelta]) -> list[list[int]]:
    """Each coordinate's values over the updates, tensors in name order."""
    flats = [[int(v) for n in sorted(u.tensors) for v in u.tensors[n].ravel()] for u in ups]
    return [list(col) for col in zip(*flats, strict=True)]


def _half_even(x: Fraction) -> int:
    return round(x)  # Python rounds a Fraction half to even


def _flat(delta: dict[str, np.ndarray]) -> list[int]:
    return [int(v) for n in sorted(delta) for v in delta[n].ravel()]


@pytest.mark.parametrize("k", [1, 2, 7, 32])
def test_median_fast_path_is_the_definition(k: int) -> None:
    ups = _updates(k, seed=k)
    want = []
    for col in _columns(ups):
        s = sorted(col)
        want.append(s[k // 2] if k % 2 else _half_even(Fraction(s[k // 2 - 1] + s[k // 2], 2)))
    for threads in (1, 2):
        assert _flat(Median(threads=threads).aggregate(ups).delta) == want


@pytest.mark.parametrize(("k", "beta"), [(5, 0.2), (10, 0.25), (32, 0.1), (3, 0.0)])
def test_trimmed_mean_fast_path_is_the_definition(k: int, beta: float) -> None:
    ups = _updates(k, seed=100 + k)
    b = TrimmedMeanConfig(beta).trimmed(k)
    want = [_half_even(Fraction(sum(sorted(col)[b : k - b]), k - 2 * b)) for col in _columns(ups)]
    for threads in (1, 2):
        got = TrimmedMean(TrimmedMeanConfig(beta), threads=threads).aggregate(ups).delta
        assert _flat(got) == want


@pytest.mark.parametrize("weighted", [True, False])
def test_fedavg_fast_path_is_the_definition(weighted: bool) -> None:
    ups = _updates(9, seed=7)
    by_key = sorted(ups, key=lambda u: u.key)
    ns = [u.n_samples if weighted else 1 for u in by_key]
    want = [
        _half_even(Fraction(sum(n * v for n, v in zip(ns, col, strict=True)), sum(ns)))
        for col in _columns(by_key)
    ]
    for threads in (1, 2):
        got = FedAvg(FedAvgConfig(weighted), threads=threads).aggregate(ups).delta
        assert _flat(got) == want
