"""Robust rules resist one huge update; FedAvg does not. Every rule rejects malformed input."""

from __future__ import annotations

import numpy as np
import pytest

from fedray.aggregation.base import ClientDelta, DuplicateDeltaError, UpdateShapeError
from fedray.aggregation.fixedpoint import dequantize, quantize
from fedray.aggregation.registry import STRATEGIES, make_strategy

ROBUST: list[tuple[str, dict[str, object]]] = [
    ("median", {}),
    ("trimmed_mean", {"beta": 0.1}),
    ("krum", {"f": 1}),
    ("multi_krum", {"f": 1, "m": 5}),
    ("centered_clipping", {"radius": 1.0}),
    ("bucketing", {"s": 2, "inner": "median"}),
]


def _honest_and_outlier() -> tuple[list[ClientDelta], np.ndarray]:
    rng = np.random.default_rng(0)
    mean = rng.normal(0.0, 0.01, size=200)
    honest = [mean + rng.normal(0.0, 0.002, size=200) for _ in range(9)]
    outlier = 1000.0 * honest[0]  # |x| ~ 10: large but inside fixed point
    arrays = [*honest, outlier]
    ups = [ClientDelta(f"c{i}".encode(), quantize({"w": a}), 100) for i, a in enumerate(arrays)]
    return ups, np.mean(honest, axis=0)


def _relative_error(name: str, config: dict[str, object]) -> float:
    ups, honest_mean = _honest_and_outlier()
    delta = dequantize(make_strategy(name, config).aggregate(ups).delta, np.float64)["w"]
    return float(np.linalg.norm(delta - honest_mean) / np.linalg.norm(honest_mean))


@pytest.mark.parametrize(("name", "config"), ROBUST, ids=[n for n, _ in ROBUST])
def test_robust_rules_ignore_a_1000x_update(name: str, config: dict[str, object]) -> None:
    assert _relative_error(name, config) < 0.35


def test_fedavg_is_dragged_by_a_1000x_update() -> None:
    assert _relative_error("fedavg", {}) > 50


def test_krum_rejects_the_outlier_and_cclip_clips_it() -> None:
    ups, _ = _honest_and_outlier()
    krum = make_strategy("multi_krum", {"f": 1, "m": 5}).aggregate(ups)
    assert krum.verdicts[-1].key == b"c9" and krum.verdicts[-1].rejected
    assert krum.verdicts[-1].score == 0  # ranked last
    cc = make_strategy("centered_clipping", {"radius": 1.0}).aggregate(ups)
    assert cc.verdicts[-1].clipped and cc.verdicts[-1].score < 65536 // 500


BAD_TENSORS: dict[str, dict[str, np.ndarray]] = {
    "float_nan": {"w": np.array([0.0, np.nan, 0.0, 0.0], np.float32)},
    "float_inf": {"w": np.array([np.inf, 0, 0, 0], np.float64)},
    "int64": {"w": np.arange(4, dtype=np.int64)},
    "name": {"v": np.zeros(4, np.int32)},
    "extra": {"w": np.zeros(4, np.int32), "x": np.zeros(1, np.int32)},
    "shape": {"w": np.zeros((2, 2), np.int32)},
    "length": {"w": np.zeros(5, np.int32)},
}


def _good_updates() -> list[ClientDelta]:
    rng = np.random.default_rng(1)
    return [
        ClientDelta(f"g{i}".encode(), {"w": rng.integers(-9, 9, 4).astype(np.int32)}, 1)
        for i in range(7)
    ]


@pytest.mark.parametrize("why", sorted(BAD_TENSORS))
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_rule_rejects_malformed_updates_with_typed_errors(name: str, why: str) -> None:
    strat = make_strategy(name, {"inner": "median"} if name == "bucketing" else {})
    with pytest.raises(UpdateShapeError):
        strat.aggregate([*_good_updates(), ClientDelta(b"zz", BAD_TENSORS[why], 1)])


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_rule_rejects_duplicate_keys(name: str) -> None:
    strat = make_strategy(name, {"inner": "median"} if name == "bucketing" else {})
    good = _good_updates()
    with pytest.raises(DuplicateDeltaError):
        strat.aggregate([*good, good[3]])
