"""Strategy names -> (config class, factory), and `make_strategy` to build one from a mapping.

Owns: the public names of the rules and turning user config (OmegaConf/YAML mappings or config
dataclasses) into a strategy, with `StrategyConfigError` naming the closest valid name or key.
`threads` is a local speed knob, not config: results never depend on it.

Rules a config names by import path are registered under a name in `extensions` and built here
like the built-in ones (their config is the mapping of keyword arguments their factory takes).

Ignores: which rule a round uses (that is a chain parameter).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from typing import Any

from fedray.aggregation.base import Strategy, StrategyConfigError
from fedray.aggregation.bucketing import Bucketing, BucketingConfig
from fedray.aggregation.centered_clipping import CenteredClipping, CenteredClippingConfig
from fedray.aggregation.direction_filter import (
    INNER_DEFAULTS,
    DirectionFilter,
    DirectionFilterConfig,
)
from fedray.aggregation.extensions import build_custom, custom_factory, custom_names
from fedray.aggregation.fedavg import FedAvg, FedAvgConfig
from fedray.aggregation.krum import Krum, KrumConfig, MultiKrum, MultiKrumConfig
from fedray.aggregation.median import Median, MedianConfig
from fedray.aggregation.trimmed_mean import TrimmedMean, TrimmedMeanConfig

Factory = Callable[[Any, int], Strategy]


def _bucketing(config: BucketingConfig, threads: int) -> Strategy:
    return Bucketing(
        config, make_strategy(config.inner, config.inner_config, threads=threads), threads
    )


def _direction_filter(config: DirectionFilterConfig, threads: int) -> Strategy:
    return DirectionFilter(
        config, make_strategy(config.inner, config.inner_config, threads=threads), threads
    )


STRATEGIES: dict[str, tuple[type, Factory]] = {
    "fedavg": (FedAvgConfig, FedAvg),
    "median": (MedianConfig, Median),
    "trimmed_mean": (TrimmedMeanConfig, TrimmedMean),
    "krum": (KrumConfig, Krum),
    "multi_krum": (MultiKrumConfig, MultiKrum),
    "centered_clipping": (CenteredClippingConfig, CenteredClipping),
    "bucketing": (BucketingConfig, _bucketing),
    "direction_filter": (DirectionFilterConfig, _direction_filter),
}


def _closest(word: str, options: list[str]) -> str:
    near = difflib.get_close_matches(word, options, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(near)}? " if near else ""
    return f"{hint}valid: {', '.join(sorted(options))}"


def make_config(name: str, config: Mapping[str, Any] | object | None = None) -> Any:
    """The frozen config dataclass of strategy `name` from a mapping, an instance, or None
    (defaults). Unknown names and keys raise `StrategyConfigError` with the closest valid ones.
    A registered custom rule's config is a plain dict, checked by building the rule once."""
    if isinstance(name, str) and custom_factory(name) is not None:
        if not isinstance(config, Mapping | None):
            raise StrategyConfigError(f"{name}: config must be a mapping")
        params = dict(config or {})
        build_custom(name, params)  # its factory refuses what it cannot take
        return params
    if not isinstance(name, str) or name not in STRATEGIES:
        options = list(STRATEGIES) + custom_names()
        raise StrategyConfigError(
            f"unknown aggregation strategy {name!r}; {_closest(str(name), options)}"
        )
    cls = STRATEGIES[name][0]
    if config is None:
        config = {}
    if isinstance(config, cls):
        cfg = config
    elif isinstance(config, Mapping):
        fields = [f.name for f in dataclasses.fields(cls)]
        for key in config:
            if key not in fields:
                raise StrategyConfigError(
                    f"{name}: unknown config key {key!r}; {_closest(str(key), fields)}"
                )
        cfg = cls(**dict(config))
    else:
        raise StrategyConfigError(
            f"{name}: config must be a mapping or {cls.__name__}, got {type(config).__name__}"
        )
    if isinstance(cfg, BucketingConfig | DirectionFilterConfig):  # freeze the whole tree
        inner = cfg.inner_config
        if inner is None and isinstance(cfg, DirectionFilterConfig):
            inner = INNER_DEFAULTS.get(cfg.inner)
        cfg = dataclasses.replace(cfg, inner_config=make_config(cfg.inner, inner))
    return cfg


def make_strategy(
    name: str, config: Mapping[str, Any] | object | None = None, *, threads: int = 1
) -> Strategy:
    """Build strategy `name` from its config (mapping, config dataclass, or None for defaults)."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise StrategyConfigError(f"threads must be an int >= 1, got {threads!r}")
    cfg = make_config(name, config)
    if name not in STRATEGIES:  # a registered custom rule
        return build_custom(name, cfg)
    return STRATEGIES[name][1](cfg, threads)
