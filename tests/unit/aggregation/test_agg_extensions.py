"""Aggregation rules by import path: registered under a chain rule name, built by the registry
like a built-in rule, run by `aggregate_round` (its fallback included), accepted by the node's
parameter check, and every result checked against the `Strategy` contract."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest

from fedray.aggregation import extensions, make_config, make_strategy
from fedray.aggregation.base import (
    WEIGHT_ONE,
    AggregationResult,
    ClientDelta,
    TooFewUpdatesError,
    Verdict,
)
from fedray.aggregation.fixedpoint import div_round_half_even
from fedray.aggregation.registry import STRATEGIES
from fedray.aggregation.round import aggregate_round
from fedray.core.contracts.governance_params import BadParamValueError
from fedray.core.state import Params
from fedray.importpath import ExtensionTypeError
from fedray.node.param_check import check_param

HERE = __name__


@dataclass(frozen=True)
class PlainMean:
    """The unweighted mean in integers; needs `minimum` updates."""

    minimum: int = 1
    name = "plain_mean"

    def aggregate(
        self, updates: Sequence[ClientDelta], state: Mapping[str, np.ndarray] | None = None
    ) -> AggregationResult:
        if len(updates) < self.minimum:
            raise TooFewUpdatesError("plain_mean: too few updates")
        ordered = sorted(updates, key=lambda u: u.key)
        delta = {
            name: div_round_half_even(
                sum(u.tensors[name].astype(np.int64) for u in ordered), len(ordered)
            ).astype(np.int32)
            for name in ordered[0].tensors
        }
        w = WEIGHT_ONE // len(ordered)
        return AggregationResult(
            delta, tuple(Verdict(u.key, True, False, False, w) for u in ordered), {}
        )


@dataclass(frozen=True)
class Broken(PlainMean):
    """Breaks the contract in the way `how` says."""

    how: str = "float"

    def aggregate(
        self, updates: Sequence[ClientDelta], state: Mapping[str, np.ndarray] | None = None
    ) -> Any:
        good = super().aggregate(updates, state)
        if self.how == "float":
            return replace(good, delta={k: v.astype(np.float32) for k, v in good.delta.items()})
        if self.how == "verdicts":
            return replace(good, verdicts=good.verdicts[::-1])
        if self.how == "state":
            return replace(good, state={"m": np.zeros(2, np.float64)})
        if self.how == "names":
            return replace(good, delta={"other": next(iter(good.delta.values()))})
        return good.delta  # not an AggregationResult


def no_aggregate(**params: Any) -> object:
    return object()


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extensions, "_CUSTOM", {})


def register(name: str, attr: str) -> None:
    extensions.register_strategy(name, f"{HERE}:{attr}", list(STRATEGIES))


UPDATES = [
    ClientDelta(key, {"w": np.array(values, np.int32)}, 1)
    for key, values in ((b"b", [30, -3]), (b"a", [10, 4]), (b"c", [-1, 0]))
]


def test_a_registered_rule_builds_and_aggregates_by_its_name() -> None:
    register("plain_mean", "PlainMean")
    assert make_config("plain_mean", {"minimum": 2}) == {"minimum": 2}
    result = make_strategy("plain_mean", {"minimum": 2}).aggregate(UPDATES)
    assert result.delta["w"].tolist() == [13, 0]  # (10+30-1)/3 = 13, (4-3+0)/3 = 0.33 -> 0
    assert [v.key for v in result.verdicts] == [b"a", b"b", b"c"]
    new = aggregate_round({"w": np.array([100, 100], np.int32)}, UPDATES, "plain_mean", {})
    assert new.new_global["w"].tolist() == [113, 100] and not new.fallback


def test_a_rule_that_needs_more_updates_falls_back_to_the_median() -> None:
    register("plain_mean", "PlainMean")
    new = aggregate_round({"w": np.zeros(2, np.int32)}, UPDATES, "plain_mean", {"minimum": 5})
    assert new.fallback and new.new_global["w"].tolist() == [10, 0]


def test_the_node_accepts_a_registered_rule_and_refuses_a_bad_config() -> None:
    register("plain_mean", "PlainMean")
    check_param("fl_rule", Params(fl_rule="plain_mean", fl_rule_config='{"minimum": 2}'))
    bad = Params(fl_rule="plain_mean", fl_rule_config=json.dumps({"minimun": 2}))
    with pytest.raises(BadParamValueError):
        check_param("fl_rule_config", bad)


@pytest.mark.parametrize("how", ["float", "verdicts", "state", "names", "type"])
def test_a_result_that_breaks_the_contract_is_refused(how: str) -> None:
    register("broken", "Broken")
    with pytest.raises(ExtensionTypeError, match="aggregation rule"):
        make_strategy("broken", {"how": how}).aggregate(UPDATES)


def test_a_factory_without_aggregate_is_refused() -> None:
    register("hollow", "no_aggregate")
    with pytest.raises(ExtensionTypeError, match="no aggregate"):
        make_strategy("hollow")


@pytest.mark.parametrize("name", ["Plain", "plain-mean", "", "x" * 33, "fedavg", "median"])
def test_a_custom_rule_needs_a_fresh_chain_rule_name(name: str) -> None:
    with pytest.raises(ExtensionTypeError, match="strategy.name"):
        register(name, "PlainMean")


def test_registering_is_idempotent_but_a_name_keeps_its_path() -> None:
    register("plain_mean", "PlainMean")
    register("plain_mean", "PlainMean")
    with pytest.raises(ExtensionTypeError, match="already registered"):
        register("plain_mean", "Broken")


def test_an_unregistered_name_is_still_unknown() -> None:
    with pytest.raises(Exception, match="unknown aggregation strategy"):
        make_strategy("plain_mean")
