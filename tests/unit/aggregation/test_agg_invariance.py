"""Determinism: byte-identical results under shuffled input, thread counts and BLAS threads."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedray.aggregation.base import AggregationResult, ClientDelta, Strategy, TooFewUpdatesError
from fedray.aggregation.bucketing import SEED_DOMAIN, buckets
from fedray.aggregation.fixedpoint import CHUNK
from fedray.aggregation.registry import make_strategy

CONFIGS: list[tuple[str, dict[str, object]]] = [
    ("fedavg", {}),
    ("median", {}),
    ("trimmed_mean", {"beta": 0.2}),
    ("krum", {"f": 2}),
    ("multi_krum", {"f": 1, "m": 3}),
    ("centered_clipping", {"radius": 1.0, "iterations": 2, "momentum": 0.3}),
    ("bucketing", {"s": 2, "inner": "trimmed_mean", "inner_config": {"beta": 0.25}}),
    ("bucketing", {"s": 3, "inner": "centered_clipping"}),
    ("direction_filter", {"inner": "centered_clipping", "norm_ratio": 2.0}),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)]


def fingerprint(r: AggregationResult) -> bytes:
    """Every byte of the result that validators must agree on."""
    h = hashlib.sha256()
    for name in sorted(r.delta):
        h.update(name.encode() + r.delta[name].dtype.str.encode() + r.delta[name].tobytes())
    for v in r.verdicts:
        h.update(repr((v.key, v.accepted, v.clipped, v.rejected, v.weight, v.score)).encode())
    for name in sorted(r.state):
        h.update(name.encode() + r.state[name].tobytes())
    return h.digest()


@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=IDS)
def test_shuffled_input_gives_identical_bytes(
    name: str, config: dict[str, object], rand_updates: Callable[..., list[ClientDelta]]
) -> None:
    ups = rand_updates(9, {"w": (3, 5), "b": (4,)}, seed=11)
    strat = make_strategy(name, config)
    first = strat.aggregate(ups)
    rng = random.Random(5)
    for _ in range(3):
        shuffled = ups[:]
        rng.shuffle(shuffled)
        assert fingerprint(strat.aggregate(shuffled)) == fingerprint(first)
    assert [v.key for v in first.verdicts] == sorted(u.key for u in ups)


@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=IDS)
def test_thread_count_gives_identical_bytes(
    name: str, config: dict[str, object], rand_updates: Callable[..., list[ClientDelta]]
) -> None:
    # several chunks per tensor, and a tensor smaller than one chunk
    ups = rand_updates(9, {"w": (3 * CHUNK + 17,), "b": (7,)}, seed=12, scale=2.0)
    results = {
        t: fingerprint(make_strategy(name, config, threads=t).aggregate(ups)) for t in (1, 2, 3)
    }
    assert results[1] == results[2] == results[3]


def test_blas_thread_count_gives_identical_bytes(
    rand_updates: Callable[..., list[ClientDelta]],
) -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    ups = rand_updates(9, {"w": (2 * CHUNK + 3,)}, seed=13, scale=3.0)
    out = []
    for blas_threads in (1, 2):
        with threadpoolctl.threadpool_limits(limits=blas_threads, user_api="blas"):
            out.append([fingerprint(make_strategy(n, c).aggregate(ups)) for n, c in CONFIGS[3:6]])
    assert out[0] == out[1]


def test_bucket_permutation_follows_the_documented_rule() -> None:
    keys = sorted(bytes([i]) * 3 for i in range(10))
    seed = hashlib.sha256(
        SEED_DOMAIN + b"".join(len(k).to_bytes(4, "big") + k for k in keys)
    ).digest()
    order = sorted(range(10), key=lambda i: hashlib.sha256(seed + i.to_bytes(4, "big")).digest())
    want = [sorted(order[j : j + 3]) for j in range(0, 10, 3)]
    got = buckets(keys, 3)
    assert got == want
    assert sorted(i for b in got for i in b) == list(range(10)) and [len(b) for b in got] == [
        3,
        3,
        3,
        1,
    ]
    other = buckets(sorted([*keys[:-1], b"\xff" * 3]), 3)  # a different multiset reshuffles
    assert other != got


_int32 = st.integers(-(2**31), 2**31 - 1)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    k=st.integers(5, 9),
    size=st.integers(1, 6),
    which=st.integers(0, len(CONFIGS) - 1),
)
def test_order_invariance_property(data: st.DataObject, k: int, size: int, which: int) -> None:
    rows = data.draw(
        st.lists(st.lists(_int32, min_size=size, max_size=size), min_size=k, max_size=k)
    )
    keys = data.draw(
        st.lists(st.binary(min_size=1, max_size=4), min_size=k, max_size=k, unique=True)
    )
    ns = data.draw(st.lists(st.integers(1, 10**6), min_size=k, max_size=k))
    ups = [
        ClientDelta(key, {"w": np.array(r, np.int32)}, n)
        for key, r, n in zip(keys, rows, ns, strict=True)
    ]
    perm = data.draw(st.permutations(range(k)))
    strat = make_strategy(*CONFIGS[which])
    assert _outcome(strat, ups) == _outcome(strat, [ups[i] for i in perm])


def _outcome(strat: Strategy, ups: list[ClientDelta]) -> bytes | str:
    """The result's fingerprint, or the error's class (Krum with too few updates must fail alike)."""
    try:
        return fingerprint(strat.aggregate(ups))
    except TooFewUpdatesError as e:
        return type(e).__name__
