"""`pair_flags` (float cosines, exact tests near the thresholds) against the definition: the exact
integer tests over every pair, on random Gram matrices and on pairs exactly at a threshold."""

from __future__ import annotations

import random

import pytest

from fedray.core.precompiles import FlagParams
from fedray.node.scoring import at_noise_level, cos_above, pair_flags


def _definition(gram: list[list[int]], dims: int, fp: FlagParams) -> tuple[list[bool], list[bool]]:
    k = len(gram)
    norms = [gram[i][i] for i in range(k)]
    quiet, copy = [], []
    for i in range(k):
        others = [j for j in range(k) if j != i and norms[j]]
        if not norms[i] or not others:
            quiet.append(False)
            copy.append(False)
            continue
        quiet.append(
            all(at_noise_level(gram[i][j], norms[i] * norms[j], dims, fp.noise_z) for j in others)
        )
        copy.append(any(cos_above(gram[i][j], norms[i] * norms[j], fp.copy) for j in others))
    return quiet, copy


def _gram(vectors: list[list[int]]) -> list[list[int]]:
    return [[sum(a * b for a, b in zip(x, y, strict=True)) for y in vectors] for x in vectors]


@pytest.mark.parametrize("seed", range(6))
def test_pair_flags_are_the_exact_tests(seed: int) -> None:
    rng = random.Random(seed)
    dims = 6
    base = [rng.randint(-(2**31), 2**31 - 1) for _ in range(dims)]
    vectors = []
    for _ in range(12):
        kind = rng.choice(["copy", "noise", "zero", "any"])
        if kind == "copy":  # nearly `base`: cosine close to 1
            v = [b + rng.randint(-(2**8), 2**8) for b in base]
        elif kind == "zero":
            v = [0] * dims
        elif kind == "noise":  # one coordinate: orthogonal to most others
            v = [0] * dims
            v[rng.randrange(dims)] = rng.randint(1, 2**31 - 1)
        else:
            v = [rng.randint(-(2**31), 2**31 - 1) for _ in range(dims)]
        vectors.append(v)
    gram = _gram(vectors)
    # dims = 6: the default noise level (4 / sqrt(6)) exceeds any cosine; 0.5 / sqrt(6) splits them
    for fp in (FlagParams(), FlagParams(noise_z=5_000, copy=9_000), FlagParams(copy=10_000)):
        assert pair_flags(gram, dims, fp) == _definition(gram, dims, fp)


def test_pairs_exactly_at_a_threshold_take_the_exact_test() -> None:
    """cos = 3/5 exactly: not above a 0.6 copy threshold, and not below a 0.6 noise level (both
    strict); float64 alone may put 0.6 on either side."""
    x, y, z = [2, 1], [2, -1], [0, 0]  # cos(x, y) = (4 - 1) / 5
    gram = _gram([x, y, z])
    dims = 4  # noise level z / 10000 / sqrt(4): 12000 -> 0.6
    fp = FlagParams(noise_z=12_000, copy=6_000)
    assert pair_flags(gram, dims, fp) == ([False, False, False], [False, False, False])
    just_below = FlagParams(noise_z=12_001, copy=5_999)  # 0.60005 and 0.5999
    assert pair_flags(gram, dims, just_below) == ([True, True, False], [True, True, False])
    assert _definition(gram, dims, fp) == pair_flags(gram, dims, fp)
