"""Direction filter: which updates it drops (hand-made inputs), its fallbacks, and composition."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fedray.aggregation.base import ClientDelta, StrategyConfigError
from fedray.aggregation.registry import make_strategy


def verdicts(result) -> dict[bytes, bool]:  # type: ignore[no-untyped-def]
    return {v.key: v.rejected for v in result.verdicts}


def test_drops_updates_against_the_median(upd: Callable[..., ClientDelta]) -> None:
    honest = [upd(f"h{i}", [10 + i, 20 - i, 5]) for i in range(4)]
    flipped = upd("bad", [-100, -200, -50])
    orthogonal = upd("zero", [0, 0, 0])
    rule = make_strategy(
        "direction_filter", {"inner": "fedavg", "inner_config": {"weighted": False}}
    )
    result = rule.aggregate([*honest, flipped, orthogonal])
    assert verdicts(result) == {**{u.key: False for u in honest}, b"bad": True, b"zero": True}
    # The kept updates are averaged by the inner rule: mean of the honest ones, half to even.
    expected = np.array([11.5, 18.5, 5.0])
    assert np.array_equal(result.delta["w"], np.array([12, 18, 5], np.int32))
    assert np.allclose(result.delta["w"], expected, atol=0.5)
    rejected = [v for v in result.verdicts if v.rejected]
    assert all(v.weight == 0 and not v.accepted for v in rejected)


def test_norm_ratio_drops_long_updates(upd: Callable[..., ClientDelta]) -> None:
    honest = [upd(f"h{i}", [10, 10 + i]) for i in range(5)]
    boosted = upd("boost", [100, 110])  # same direction, 10x longer
    plain = make_strategy("direction_filter", {"inner": "median", "norm_ratio": 0.0})
    assert not verdicts(plain.aggregate([*honest, boosted]))[b"boost"]
    bounded = make_strategy("direction_filter", {"inner": "median", "norm_ratio": 3.0})
    assert verdicts(bounded.aggregate([*honest, boosted]))[b"boost"]


def test_keeps_everything_when_too_few_would_remain(upd: Callable[..., ClientDelta]) -> None:
    ups = [upd("a", [5, 5]), upd("b", [-4, -4]), upd("c", [-3, -3])]  # median (-3, -3)
    two = make_strategy("direction_filter", {"inner": "fedavg", "min_keep": 2})
    assert verdicts(two.aggregate(ups)) == {b"a": True, b"b": False, b"c": False}
    three = make_strategy("direction_filter", {"inner": "fedavg", "min_keep": 3})
    assert not any(verdicts(three.aggregate(ups)).values())  # two would remain: none dropped


def test_config_errors() -> None:
    with pytest.raises(StrategyConfigError):
        make_strategy("direction_filter", {"inner": "kurm"})
    with pytest.raises(StrategyConfigError):
        make_strategy("direction_filter", {"norm_ratio": -1.0})
    with pytest.raises(StrategyConfigError):
        make_strategy("direction_filter", {"inner": "median", "inner_config": {"beta": 0.1}})
