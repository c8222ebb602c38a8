"""The import paths of a run config, checked before anything starts (docs/extending.md).

`prepare_imports(cfg)` puts the config's `python_path` on `sys.path` and registers the rule of
`strategy.factory` under `strategy.name` in this process, so the registry builds it; it is
idempotent, and every process of a run calls it (the driver through `load_config` and
`Federation`, client pools through `Federation`, validators through their settings).
`validate_extensions(cfg)` does that, resolves `model.factory` and `data.loader` (calling them
needs the data, which `Federation.preflight` does) and builds the attack of `attack.factory` once.
Every failure is a `ConfigError` naming the key.

Deliberately ignored: whether the code a path names is safe to run (a config runs what it names).
"""

from __future__ import annotations

from typing import Any

from fedray.errors import ConfigError
from fedray.importpath import add_search_paths, resolve

RunConfig = Any  # a fedray.config.RunConfig (which imports this module)


def register_strategies(
    rules: tuple[tuple[str, str], ...], python_path: tuple[str, ...] = ()
) -> None:
    """Register each (name, import path) custom aggregation rule in this process, after putting
    `python_path` on `sys.path`."""
    from fedray.aggregation.extensions import register_strategy
    from fedray.aggregation.registry import STRATEGIES

    if python_path:
        add_search_paths(python_path)
    for name, path in rules:
        register_strategy(name, path, list(STRATEGIES))


def custom_strategies(cfg: RunConfig) -> tuple[tuple[str, str], ...]:
    """The (name, import path) of the config's custom rule, if it has one."""
    if not cfg.strategy.factory:
        return ()
    return ((cfg.strategy.name, cfg.strategy.factory),)


def prepare_imports(cfg: RunConfig) -> None:
    """Put the config's `python_path` on `sys.path` and register its custom rule (idempotent);
    every process that builds a model, data or a rule of the config calls it first."""
    register_strategies(custom_strategies(cfg), tuple(cfg.python_path))


def validate_extensions(cfg: RunConfig) -> None:
    prepare_imports(cfg)
    if cfg.model.factory:
        resolve(cfg.model.factory, "model.factory")
    if cfg.data.loader:
        resolve(cfg.data.loader, "data.loader")
    if cfg.attack.factory:
        from fedray.learning.extensions import make_custom_attack

        try:
            make_custom_attack(cfg.attack.factory, dict(cfg.attack.params))
        except ConfigError:
            raise
        except Exception as exc:  # the factory refused its params
            raise ConfigError(
                f"config key 'attack.params': {cfg.attack.factory} raised "
                f"{type(exc).__name__}: {exc}"
            ) from None
