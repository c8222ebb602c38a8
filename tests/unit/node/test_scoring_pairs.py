"""`pair_flags` (float cosines, exact tests near the thresholds) against the definition: the exact
integer tests over every pair, on random Gram matrices and on pairs exactly at a threshold; and
`score_updates` skipping the Gram where neither pair flag can be set."""

from __future__ import annotations

import random

import numpy as np
import pytest

from fedray.aggregation.base import ClientDelta
from fedray.core.precompiles import FLAG_NEAR_COPY, FLAG_UNCORRELATED, FlagParams
from fedray.node import scoring
from fedray.node.scoring import at_noise_level, cos_above, pair_flags, score_updates


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


def _round(seed: int) -> tuple[list[ClientDelta], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    base = rng.integers(-(2**20), 2**20, size=300).astype(np.int32)
    ups = []
    for i in range(8):
        if i == 0:
            w = np.zeros(300, np.int32)  # a free rider
        elif i < 3:
            w = base + rng.integers(-3, 3, size=300).astype(np.int32)  # near copies
        else:
            w = rng.integers(-(2**20), 2**20, size=300).astype(np.int32)
        ups.append(ClientDelta(bytes([i + 1]) * 4, {"w": w}, 10 + i))
    delta = {"w": np.mean([u.tensors["w"] for u in ups], axis=0).astype(np.int32)}
    return sorted(ups, key=lambda u: u.key), delta


def test_pair_flags_off_skip_the_gram_and_change_no_score(monkeypatch) -> None:
    ups, delta = _round(seed=4)
    weights, rejected = [1 << 13] * 8, [False] * 8
    on = score_updates(ups, delta, weights, rejected, FlagParams(noise_z=30_000, copy=9_000))
    assert any(s.flags & FLAG_NEAR_COPY for s in on)  # the round does hold copies
    off = FlagParams(noise_z=0, copy=10_000)
    monkeypatch.setattr(scoring, "pairs_flagged", lambda fp: True)  # the Gram computed anyway
    want = score_updates(ups, delta, weights, rejected, off)
    monkeypatch.undo()

    def no_gram(*args: object) -> None:
        raise AssertionError("the Gram matrix was computed with both pair flags off")

    monkeypatch.setattr(scoring, "exact_gram", no_gram)
    assert score_updates(ups, delta, weights, rejected, off) == want
    assert not any(s.flags & (FLAG_NEAR_COPY | FLAG_UNCORRELATED) for s in want)
