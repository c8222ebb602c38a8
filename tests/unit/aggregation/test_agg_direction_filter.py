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
        "direction_filter",
        {"inner": "fedavg", "inner_config": {"weighted": False}, "direction_norm_ratio": 0.0},
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
    every = {"inner": "fedavg", "direction_norm_ratio": 0.0}
    two = make_strategy("direction_filter", {**every, "min_keep": 2})
    assert verdicts(two.aggregate(ups)) == {b"a": True, b"b": False, b"c": False}
    three = make_strategy("direction_filter", {**every, "min_keep": 3})
    assert not any(verdicts(three.aggregate(ups)).values())  # two would remain: none dropped


def test_only_long_updates_against_the_median_are_dropped_by_default(
    upd: Callable[..., ClientDelta],
) -> None:
    """An honest client with rare labels may point against the median; it is dropped only when it
    is also longer than direction_norm_ratio (3) x the median norm, as sign flips and IPM are."""
    honest = [upd(f"h{i}", [10 + i, 20 - i, 5]) for i in range(5)]
    rare = upd("rare", [-12, -18, 4])  # against the median, of honest length
    flipped = upd("bad", [-80, -160, -40])  # against the median, about 8x longer
    rule = make_strategy("direction_filter", {"inner": "fedavg"})
    assert verdicts(rule.aggregate([*honest, rare, flipped])) == {
        **{u.key: False for u in honest},
        b"rare": False,
        b"bad": True,
    }
    off = make_strategy("direction_filter", {"inner": "fedavg", "direction": False})
    assert not any(verdicts(off.aggregate([*honest, rare, flipped])).values())


def test_default_config_is_the_default_rule() -> None:
    rule = make_strategy("direction_filter")
    cfg = rule.config  # type: ignore[attr-defined]
    assert (cfg.norm_ratio, cfg.direction, cfg.direction_norm_ratio) == (10.0, True, 3.0)
    assert cfg.inner == "centered_clipping" and cfg.inner_config.radius == 2.0
    assert make_strategy("direction_filter", {"inner": "median"}).inner.config is not None  # type: ignore[attr-defined]


def test_config_errors() -> None:
    with pytest.raises(StrategyConfigError):
        make_strategy("direction_filter", {"inner": "kurm"})
    with pytest.raises(StrategyConfigError):
        make_strategy("direction_filter", {"norm_ratio": -1.0})
    with pytest.raises(StrategyConfigError):
        make_strategy("direction_filter", {"direction_norm_ratio": -1.0})
    with pytest.raises(StrategyConfigError):
        make_strategy("direction_filter", {"inner": "median", "inner_config": {"beta": 0.1}})
