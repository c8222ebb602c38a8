"""The registry: names, typed configs, helpful errors, nested bucketing configs."""

from __future__ import annotations

import numpy as np
import pytest

from fedray.aggregation import STRATEGIES, make_config, make_strategy
from fedray.aggregation.base import AggregationError, ClientDelta, StrategyConfigError
from fedray.aggregation.bucketing import Bucketing, BucketingConfig
from fedray.aggregation.centered_clipping import CenteredClippingConfig
from fedray.aggregation.median import MedianConfig
from fedray.aggregation.trimmed_mean import TrimmedMean, TrimmedMeanConfig
from fedray.errors import ConfigError

NAMES = {
    "fedavg",
    "median",
    "trimmed_mean",
    "krum",
    "multi_krum",
    "centered_clipping",
    "bucketing",
    "direction_filter",
}


def test_registry_holds_exactly_the_documented_names() -> None:
    assert set(STRATEGIES) == NAMES


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_strategy_builds_with_defaults_and_aggregates(name: str) -> None:
    strat = make_strategy(name)
    assert strat.name == name
    ups = [ClientDelta(bytes([i + 1]), {"w": np.full(3, i, np.int32)}, 1) for i in range(7)]
    result = strat.aggregate(ups)
    assert result.delta["w"].dtype == np.int32 and len(result.verdicts) == 7


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(StrategyConfigError, match="did you mean median"):
        make_strategy("medain")
    with pytest.raises(StrategyConfigError, match="multi_krum"):
        make_strategy("multikrum")


def test_unknown_key_suggests_the_closest() -> None:
    with pytest.raises(StrategyConfigError, match="did you mean beta"):
        make_strategy("trimmed_mean", {"bta": 0.1})
    with pytest.raises(StrategyConfigError, match="radius"):
        make_strategy("centered_clipping", {"tau": 1.0})


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("trimmed_mean", {"beta": "0.1"}),  # wrong type
        ("trimmed_mean", {"beta": 0.5}),  # out of range
        ("trimmed_mean", {"beta": float("nan")}),
        ("krum", {"f": True}),  # bool is not an int here
        ("krum", {"f": 1.0}),
        ("krum", {"f": -1}),
        ("multi_krum", {"m": 0}),
        ("fedavg", {"weighted": 1}),
        ("centered_clipping", {"radius": 0.0}),
        ("centered_clipping", {"radius": float("inf")}),
        ("centered_clipping", {"radius": 1e-9}),  # rounds to 0 at 2**-16
        ("centered_clipping", {"iterations": 0}),
        ("centered_clipping", {"momentum": 1.0}),
        ("bucketing", {"s": 0}),
        ("bucketing", {"inner": "nope"}),
        ("bucketing", {"inner": "krum", "inner_config": {"q": 1}}),
    ],
)
def test_bad_values_raise_strategy_config_error(name: str, config: dict[str, object]) -> None:
    with pytest.raises(StrategyConfigError):
        make_strategy(name, config)


def test_config_error_is_both_aggregation_and_config_error() -> None:
    with pytest.raises(AggregationError):
        make_strategy("nope")
    with pytest.raises(ConfigError):
        make_strategy("nope")


def test_config_dataclass_or_mapping_and_int_to_float() -> None:
    strat = make_strategy("trimmed_mean", TrimmedMeanConfig(beta=0.2), threads=2)
    assert isinstance(strat, TrimmedMean) and strat.config.beta == 0.2 and strat.threads == 2
    cfg = make_config("centered_clipping", {"radius": 2})
    assert cfg == CenteredClippingConfig(radius=2.0) and isinstance(cfg.radius, float)
    with pytest.raises(StrategyConfigError, match="MedianConfig|TrimmedMeanConfig"):
        make_strategy("trimmed_mean", MedianConfig())
    with pytest.raises(StrategyConfigError):
        make_strategy("median", [("x", 1)])
    with pytest.raises(StrategyConfigError, match="threads"):
        make_strategy("median", threads=0)


def test_bucketing_resolves_its_inner_config() -> None:
    strat = make_strategy(
        "bucketing", {"s": 3, "inner": "trimmed_mean", "inner_config": {"beta": 0.25}}
    )
    assert isinstance(strat, Bucketing)
    assert strat.config == BucketingConfig(
        s=3, inner="trimmed_mean", inner_config=TrimmedMeanConfig(0.25)
    )
    assert strat.inner.name == "trimmed_mean" and strat.inner.config.beta == 0.25  # type: ignore[attr-defined]
    nested = make_strategy("bucketing", {"inner": "bucketing", "inner_config": {"inner": "median"}})
    assert nested.inner.config.inner_config == MedianConfig()  # type: ignore[attr-defined]
