"""The compiled weighted-mean kernel against the definition in Python integers, and the dispatch
that hands large batches to it: same bytes as numpy's path, at any thread count."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from fedray.aggregation import fixedpoint as fp
from fedray.aggregation import kernels
from fedray.aggregation.base import MAX_TOTAL_SAMPLES, ClientDelta
from fedray.aggregation.registry import make_strategy

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
SIZE = 3 * kernels.BLOCK + 5  # several blocks, the last one short


def _rows(k: int, seed: int, size: int = SIZE) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(k):
        r = rng.integers(I32_MIN, I32_MAX, size=size, endpoint=True, dtype=np.int64)
        ties = rng.random(size) < 0.4
        r[ties] = rng.choice([I32_MIN, -1, 0, 1, I32_MAX], size=int(ties.sum()))
        r[:8] = I32_MAX if i % 2 else I32_MIN
        rows.append(r.astype(np.int32))
    return rows


def _definition(rows: list[np.ndarray], weights: list[int]) -> list[int]:
    den = sum(weights)
    cols = zip(*(r.tolist() for r in rows), strict=True)
    return [round(Fraction(sum(w * v for w, v in zip(weights, c, strict=True)), den)) for c in cols]


def _kernel_mean(rows: list[np.ndarray], weights: list[int], start: int = 0, stop: int = -1):
    stop = rows[0].size if stop < 0 else stop
    out = np.full(rows[0].size, 7, dtype=np.int32)
    kernels.weighted_mean_into(kernels.readonly_rows(rows), weights, sum(weights), out, start, stop)
    return out


@pytest.mark.parametrize(
    "weights",
    [
        [1],  # one row: the mean is the row
        [1, 1],  # den 2: every odd sum is a tie, ties to even both signs
        [1, 1, 1, 1, 1, 1, 1],  # odd count: the tail row outside the pairs
        [3, 1, 4, 1, 5, 9, 2, 6],  # one pass of eight
        [5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8],  # eight, a pair and the last one
        [2**31, 2**31 - 1],  # den near 2**32: the float estimate needs the integer correction
        [2**31 - 1, 2**31 - 1],  # exact ties at |num| ~ 2**62, where float64 blurs them
        [MAX_TOTAL_SAMPLES - 2, 1, 1],  # the largest den the callers allow
    ],
)
def test_kernel_is_the_definition(weights: list[int]) -> None:
    rows = _rows(len(weights), seed=len(weights) + weights[0] % 97)
    assert _kernel_mean(rows, weights).tolist() == _definition(rows, weights)


def test_kernel_rounds_exact_halves_to_even() -> None:
    rows = [
        np.array([1, 3, -1, -3, 2, I32_MAX], np.int32),
        np.array([0, 0, 0, 0, 1, I32_MAX - 1], np.int32),
    ]
    # (1+0)/2=0.5->0, 1.5->2, -0.5->0, -1.5->-2, 1.5->2, (2**32-3)/2 -> 2**31-2 (even)
    assert _kernel_mean(rows, [1, 1]).tolist() == [0, 2, 0, -2, 2, I32_MAX - 1]


def test_kernel_writes_only_its_range() -> None:
    rows = _rows(3, seed=5)
    start, stop = kernels.BLOCK - 3, 2 * kernels.BLOCK + 11  # straddles block edges
    out = _kernel_mean(rows, [2, 3, 4], start, stop)
    assert out[start:stop].tolist() == _definition(rows, [2, 3, 4])[start:stop]
    assert (out[:start] == 7).all() and (out[stop:] == 7).all()


def test_rows_of_mixed_flags_share_one_kernel() -> None:
    """Decoded updates arrive read-only, fresh ones writable: the list must type the same."""
    rows = _rows(2, seed=9, size=100)
    rows[0].flags.writeable = False
    assert _kernel_mean(rows, [1, 2]).tolist() == _definition(rows, [1, 2])
    assert rows[1].flags.writeable  # the caller's arrays keep their flags


def _updates(k: int, seed: int, size: int) -> list[ClientDelta]:
    rng = np.random.default_rng(seed)
    return [
        ClientDelta(
            rng.bytes(8), {"w": r, "b": r[:6].reshape(3, 2).copy()}, int(rng.integers(1, 900))
        )
        for r in _rows(k, seed, size)
    ]


@pytest.mark.parametrize("rule", ["fedavg", "fedavg_equal", "bucketing"])
def test_large_batches_take_the_kernel_with_numpys_bytes(rule: str, monkeypatch) -> None:
    ups = _updates(9, seed=3, size=2 * fp.COMPILED_CHUNK + 17)
    name, config = {
        "fedavg": ("fedavg", {}),
        "fedavg_equal": ("fedavg", {"weighted": False}),
        "bucketing": ("bucketing", {"s": 2, "inner": "fedavg"}),  # equal-weight bucket means
    }[rule]

    def make(threads: int):
        return make_strategy(name, config, threads=threads)

    monkeypatch.setattr(fp, "COMPILED_MIN_VALUES", 1 << 62)  # numpy only
    want = make(1).aggregate(ups).delta
    calls = []
    real = kernels.weighted_mean_into
    monkeypatch.setattr(fp, "COMPILED_MIN_VALUES", 1)
    monkeypatch.setattr(kernels, "weighted_mean_into", lambda *a: calls.append(a) or real(*a))
    for threads in (1, 2):
        got = make(threads).aggregate(ups).delta
        assert sorted(got) == sorted(want)
        assert all(np.array_equal(got[n], want[n]) for n in want)
    assert calls  # the compiled path ran


def test_loops_compile_where_numba_cannot_cache() -> None:
    """A read-only install without a usable home leaves numba no cache directory: the loops must
    still compile (per process) rather than fail the import. A function without a source file
    has no cache location either."""
    namespace: dict[str, object] = {}
    exec("def plus_one(x):\n    return x + 1\n", namespace)
    assert kernels._jit(namespace["plus_one"])(41) == 42
