"""Aggregation rules a config names by import path (`strategy.factory=pkg.module:Cls`).

The chain's parameter `fl_rule` is a short name; a config with `strategy.factory` registers its
factory under `strategy.name` in every process that aggregates or checks rules (the driver, each
validator: `register_strategy`), and from then on the registry (`make_config`, `make_strategy`)
builds that name like a built-in one. A governance vote may switch to a built-in rule and back.

A `StrategyFactory` is called as `factory(**strategy.params)` and returns a `Strategy`
(`fedray.aggregation.base`). Validators run it on the round's updates, so it must keep the
determinism contract of every rule (docs/extending.md):
- inputs are int32 fixed-point deltas (value = q * 2**-24) with sample counts, in any order: sort
  them by `ClientDelta.key` before anything depends on order;
- compute in integers (numpy int64, `fedray.aggregation.fixedpoint` helpers) or round every
  float decision to fixed point before it touches the result, so every machine gets the same bytes;
- return an `AggregationResult`: an int32 delta with the updates' names and shapes, one `Verdict`
  per update sorted by key, and a state of integer arrays (the only thing kept across rounds).
`CheckedStrategy` checks the shape of that result on every call and raises `ExtensionTypeError`
for a wrong one; it cannot check determinism (two validators disagreeing on the new model stop
the chain at that round, which is the point of running it on every validator).

Deliberately ignored: the `threads` speed knob (a custom rule runs single-threaded).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from fedray.aggregation.base import AggregationResult, ClientDelta, Strategy, Verdict
from fedray.importpath import ExtensionTypeError, resolve

RULE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # what the chain accepts as fl_rule


class StrategyFactory(Protocol):
    """`strategy.factory`: a rule from its config (`strategy.params`)."""

    def __call__(self, **params: Any) -> Strategy: ...


@dataclass(frozen=True)
class CheckedStrategy:
    """A custom rule whose every result is checked against the `Strategy` contract."""

    inner: Strategy
    path: str
    name: str  # the name it is registered under (the chain's fl_rule)

    def aggregate(
        self,
        updates: Sequence[ClientDelta],
        state: Mapping[str, np.ndarray] | None = None,
    ) -> AggregationResult:
        result = self.inner.aggregate(updates, state)
        check_result(result, updates, self.path)
        return result


def check_result(result: object, updates: Sequence[ClientDelta], path: str) -> None:
    """Raise `ExtensionTypeError` unless `result` is what a rule must return for `updates`."""
    where = f"aggregation rule {path}"
    if not isinstance(result, AggregationResult):
        raise ExtensionTypeError(
            f"{where} returned a {type(result).__name__}, not an AggregationResult"
        )
    like = updates[0].tensors if updates else {}
    if set(result.delta) != set(like):
        raise ExtensionTypeError(f"{where}: the delta's tensor names differ from the updates'")
    for name, a in result.delta.items():
        if not isinstance(a, np.ndarray) or a.dtype != np.int32 or a.shape != like[name].shape:
            raise ExtensionTypeError(
                f"{where}: delta {name!r} must be an int32 array of shape {like[name].shape}"
            )
    keys = sorted(u.key for u in updates)
    verdicts = result.verdicts
    if not all(isinstance(v, Verdict) for v in verdicts) or [v.key for v in verdicts] != keys:
        raise ExtensionTypeError(f"{where}: want one Verdict per update, sorted by key")
    for name, a in result.state.items():
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu":
            raise ExtensionTypeError(f"{where}: state {name!r} must be an integer array")


_CUSTOM: dict[str, tuple[str, StrategyFactory]] = {}  # name -> (import path, factory)


def register_strategy(name: str, path: str, builtin: Sequence[str]) -> None:
    """Make rule `name` build with the factory at `path` in this process (idempotent)."""
    key = "strategy.name"
    if not isinstance(name, str) or not RULE_NAME.fullmatch(name):
        raise ExtensionTypeError(
            f"config key '{key}': a custom rule needs a short name ([a-z][a-z0-9_]*, at most 32 "
            f"characters) for the chain's fl_rule, got {name!r}"
        )
    if name in builtin:
        raise ExtensionTypeError(
            f"config key '{key}': {name!r} is a built-in rule; name the custom rule otherwise"
        )
    known = _CUSTOM.get(name)
    if known is not None and known[0] != path:
        raise ExtensionTypeError(
            f"config key '{key}': {name!r} is already registered for {known[0]}, not {path}"
        )
    _CUSTOM[name] = (path, resolve(path, "strategy.factory"))


def custom_factory(name: str) -> StrategyFactory | None:
    entry = _CUSTOM.get(name)
    return None if entry is None else entry[1]


def custom_names() -> list[str]:
    return sorted(_CUSTOM)


def build_custom(name: str, params: Mapping[str, Any]) -> Strategy:
    """Rule `name` (registered) built from `params`, its results checked (`CheckedStrategy`)."""
    path, factory = _CUSTOM[name]
    strategy = factory(**dict(params))
    if not callable(getattr(strategy, "aggregate", None)):
        raise ExtensionTypeError(
            f"config key 'strategy.factory': {path} returned a {type(strategy).__name__}, "
            "which has no aggregate(updates, state) method"
        )
    return CheckedStrategy(strategy, path, name)
