"""The semantic checks of a run config that OmegaConf's types cannot express: value ranges
(`_RANGES`), names that must be known (data set, model, partition, rule, attack, chain parameter)
and combinations that cannot run (timeouts, natural partitions, privacy). `fedray.config` calls
`validate` once a config is merged; what needs the data or the machine is checked later by
`Federation.preflight` and `runtime.launch`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import re
from typing import Any

from fedray.config_extensions import validate_extensions
from fedray.config_schema import INGRESS_MODES, MLFLOW_MISSING, RunConfig, with_model_defaults
from fedray.errors import ConfigError

# (key, check, what it must be): ranges of plain values, checked in this order.
_RANGES: tuple[tuple[str, Any, str], ...] = (
    ("name", lambda v: bool(_NAME.fullmatch(v)), "a file name of letters, digits, '.', '_', '-'"),
    ("seed", lambda v: v >= 0, "must be >= 0"),
    ("rounds", lambda v: v >= 1, "must be at least 1"),
    ("clients", lambda v: v >= 1, "must be at least 1"),
    ("data.alpha", lambda v: math.isfinite(v) and v > 0, "must be > 0"),
    ("data.min_partition_size", lambda v: v >= 1, "must be at least 1"),
    ("data.classes_per_client", lambda v: v >= 1, "must be at least 1"),
    ("data.test_fraction", lambda v: 0 < v < 1, "must be in (0, 1)"),
    ("data.synthetic_alpha", lambda v: v >= 0, "must be >= 0"),
    ("data.synthetic_beta", lambda v: v >= 0, "must be >= 0"),
    ("model.hidden", lambda v: v >= 1, "must be at least 1"),
    ("training.epochs", lambda v: v >= 1, "must be at least 1"),
    ("training.batch_size", lambda v: v >= 1, "must be at least 1"),
    ("training.lr", lambda v: math.isfinite(v) and v > 0, "must be > 0"),
    ("training.momentum", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("training.prox_mu", lambda v: v >= 0, "must be >= 0"),
    ("attack.fraction", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("attack.start_round", lambda v: v >= 0, "must be >= 0"),
    ("chain.validators", lambda v: v >= 1, "must be at least 1"),
    ("chain.clients_per_round", lambda v: v >= 0, "must be >= 0"),
    ("chain.round_deadline_blocks", lambda v: v >= 2, "must be >= 2"),
    ("chain.round_timeout_s", lambda v: 0 <= v <= 30 * 86400, "must be in [0, 30 days]"),
    ("chain.block_interval_s", lambda v: v > 0, "must be > 0"),
    ("chain.round_gather_s", lambda v: v >= 0, "must be >= 0"),
    ("chain.timeout_vote_s", lambda v: v > 0, "must be > 0"),
    ("chain.timeout_delta_s", lambda v: v >= 0, "must be >= 0"),
    ("chain.client_balance", lambda v: v >= 0, "must be >= 0"),
    ("chain.client_stake", lambda v: v >= 1, "must be at least 1"),
    ("chain.validator_stake", lambda v: v >= 1, "must be at least 1"),
    ("chain.max_block_txs", lambda v: v >= 1, "must be at least 1"),
    ("runtime.num_cpus", lambda v: v is None or v >= 1, "must be at least 1 (or null)"),
    ("runtime.object_store_mb", lambda v: v >= 80, "must be at least 80 (Ray's minimum)"),
    ("runtime.client_pools", lambda v: v >= 1, "must be at least 1"),
    ("runtime.pool_num_cpus", lambda v: v > 0, "must be > 0"),
    (
        "runtime.pool_num_gpus",
        lambda v: 0 <= v <= 1 or float(v).is_integer(),
        "a fraction in [0, 1] or a whole number",
    ),
    ("runtime.validator_num_cpus", lambda v: v > 0, "must be > 0"),
    ("runtime.aggregation_threads", lambda v: v >= 1, "must be at least 1"),
    ("runtime.checkpoint_every", lambda v: v >= 0, "must be >= 0 (0: no checkpoints)"),
    ("faults.slow_pool_s", lambda v: v >= 0, "must be >= 0"),
    ("privacy.mode", lambda v: v in ("none", "local", "distributed"), "none | local | distributed"),
    ("privacy.epsilon", lambda v: v > 0 and not math.isnan(v), "must be > 0 (.inf: no budget)"),
    ("privacy.delta", lambda v: 0 < v < 1, "must be in (0, 1)"),
    ("privacy.clip_norm", lambda v: math.isfinite(v) and 0 < v < 2**24, "must be in (0, 2**24)"),
    (
        "privacy.noise_multiplier",
        lambda v: v is None or (math.isfinite(v) and 0 < v < 10**6),
        "must be in (0, 10**6) (or null: derived from epsilon)",
    ),
)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def _value(cfg: RunConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def validate(cfg: RunConfig) -> None:
    """Semantic checks OmegaConf's types cannot express, before anything starts; each error names
    the key at fault. What needs the data or the machine is checked by `Federation.preflight`."""
    from fedray.aggregation.registry import make_config

    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"config key '{key}': {msg}")

    cfg = with_model_defaults(cfg)
    for key, check, what in _RANGES:
        value = _value(cfg, key)
        need(bool(check(value)), key, f"{what}, got {value!r}")
    need(
        cfg.chain.timeout_propose_s > cfg.chain.block_interval_s,
        "chain.timeout_propose_s",
        f"must exceed chain.block_interval_s ({cfg.chain.block_interval_s}), or validators "
        "prevote nil while the proposer waits",
    )
    need(
        cfg.chain.timeout_propose_s > cfg.chain.timeout_commit_s,
        "chain.timeout_commit_s",
        f"must stay below chain.timeout_propose_s ({cfg.chain.timeout_propose_s}), or validators "
        "prevote nil while the proposer waits for late precommits",
    )
    validate_extensions(cfg)  # resolves import paths and registers a custom rule
    try:
        make_config(cfg.strategy.name, dict(cfg.strategy.params))
    except Exception as exc:  # the registry names the closest valid rule or key
        raise ConfigError(f"config key 'strategy': {exc}") from None
    from fedray.learning.attacks import make_attack
    from fedray.learning.datasets import DATASETS
    from fedray.learning.models import MODELS
    from fedray.learning.partition import SCHEMES
    from fedray.learning.synthetic_users import SYNTHETIC_USERS

    named = (
        ("data.name", cfg.data.name, (*DATASETS, SYNTHETIC_USERS), cfg.data.loader),
        ("data.partition", cfg.data.partition, SCHEMES, None),
        ("model.name", cfg.model.name, MODELS, cfg.model.factory),
        ("runtime.keys", cfg.runtime.keys, ("simulation", "fresh"), None),
        ("runtime.ingress", cfg.runtime.ingress, INGRESS_MODES, None),
        ("metrics.log_rounds", cfg.metrics.log_rounds, ("auto", "always", "never"), None),
    )
    for key, value, options in ((k, v, o) for k, v, o, path in named if not path):
        near = difflib.get_close_matches(value, options, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        need(value in options, key, f"unknown value {value!r}{hint}; valid: {', '.join(options)}")
    if cfg.attack.name != "none" and not cfg.attack.factory:
        try:
            make_attack(cfg.attack.name, dict(cfg.attack.params))
        except Exception as exc:
            raise ConfigError(f"config key 'attack': {exc}") from None
    from fedray.core.state import Params

    fields = {f.name for f in dataclasses.fields(Params)}
    for key in cfg.chain.params:
        near = difflib.get_close_matches(key, sorted(fields), n=2)
        need(
            key in fields,
            f"chain.params.{key}",
            "unknown chain parameter" + (f" (did you mean {', '.join(near)}?)" if near else ""),
        )
    for i, action in enumerate(cfg.governance):
        need(
            action.kind in ("param_change", "admit", "ban", "model_release"),
            f"governance[{i}].kind",
            "param_change | admit | ban | model_release",
        )
        for who in ("validator_votes", "client_votes"):
            need(
                getattr(action, who) in ("yes", "no", "abstain", "veto", "none"),
                f"governance[{i}].{who}",
                "yes | no | abstain | veto | none",
            )
    if cfg.metrics.mlflow_uri is not None:
        need(importlib.util.find_spec("mlflow") is not None, "metrics.mlflow_uri", MLFLOW_MISSING)
    if cfg.privacy.mode != "none":
        need(
            math.isfinite(cfg.privacy.epsilon) or cfg.privacy.noise_multiplier is not None,
            "privacy.noise_multiplier",
            "an infinite epsilon needs an explicit noise multiplier",
        )
    if cfg.data.partition == "natural" and not cfg.data.loader:
        need(
            cfg.data.name in ("synthetic", "synthetic_users"),
            "data.partition",
            "natural needs data.name=synthetic or synthetic_users",
        )
        need(
            cfg.data.name != "synthetic" or cfg.clients == 30,
            "clients",
            "Synthetic has 30 natural users: set clients=30, or data=synthetic_users for one "
            "generated user per client",
        )
    if cfg.data.name == "synthetic_users":
        need(
            cfg.data.partition == "natural",
            "data.partition",
            "synthetic_users has one natural user per client: set data.partition=natural",
        )
