"""One aggregation round as the chain runs it: layout checks, the rule, its median fallback, and the
saturating add to the global model."""

from __future__ import annotations

import numpy as np
import pytest

from fedray.aggregation.base import UpdateShapeError
from fedray.aggregation.round import INT32_MAX, INT32_MIN, aggregate_round, apply_delta


def test_apply_delta_saturates_at_the_int32_range() -> None:
    g = {"w": np.array([INT32_MAX - 1, INT32_MIN + 1, 5], dtype=np.int32)}
    d = {"w": np.array([10, -10, -7], dtype=np.int32)}
    out = apply_delta(g, d)
    assert out["w"].dtype == np.int32
    assert out["w"].tolist() == [INT32_MAX, INT32_MIN, -2]


def test_the_rule_aggregates_and_the_delta_is_added(upd) -> None:
    g = {"w": np.array([100, 100], dtype=np.int32)}
    deltas = [upd("a", [2, 4]), upd("b", [4, 8])]
    out = aggregate_round(g, deltas, "fedavg")
    assert not out.fallback
    assert out.result.delta["w"].tolist() == [3, 6]
    assert out.new_global["w"].tolist() == [103, 106]


def test_too_few_updates_for_the_rule_fall_back_to_the_median_and_keep_the_state(upd) -> None:
    g = {"w": np.zeros(3, dtype=np.int32)}
    deltas = [upd("a", [1, 1, 1]), upd("b", [2, 5, 2]), upd("c", [9, 2, 3])]
    state = {"momentum": np.array([7], dtype=np.int64)}
    out = aggregate_round(g, deltas, "krum", {"f": 1}, state)  # Krum needs K >= 2f + 3 = 5
    assert out.fallback
    assert out.new_global["w"].tolist() == [2, 2, 2]  # coordinate-wise median
    assert out.result.state["momentum"].tolist() == [7]


def test_a_delta_of_another_layout_is_refused_before_any_arithmetic(upd) -> None:
    g = {"w": np.zeros(3, dtype=np.int32)}
    with pytest.raises(UpdateShapeError):
        aggregate_round(g, [upd("a", [1, 2])], "fedavg")
