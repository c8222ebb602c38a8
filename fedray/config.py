"""Run configuration: OmegaConf structured configs bound to frozen dataclasses.

`load_config(path, overrides)` merges, in order: the dataclass defaults (which are the default run),
an optional YAML file, then `key=value` overrides. An override whose key is a config *group*
(`strategy`, `attack`, `data`) and whose value names a file in `conf/<group>/` merges that file
into the group, Hydra style (`strategy=krum`); any other override sets one key (`rounds=3`,
`strategy.params.norm_ratio=2.0`). Unknown keys and wrong types raise `ConfigError` naming the key and
the closest valid ones.

Deliberately ignored: Hydra's multirun and interpolation resolvers (Ray Tune sweeps call
`load_config` per trial instead).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from fedray.errors import ConfigError

GROUPS = ("strategy", "attack", "data")


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"  # digits | mnist5k | synthetic
    partition: str = "iid"  # iid | dirichlet | shards | natural
    alpha: float = 0.5  # dirichlet concentration (smaller: more label skew)
    min_partition_size: int = 10  # dirichlet: redraw until every client has this many samples
    classes_per_client: int = 2  # shards
    test_fraction: float = 0.2
    synthetic_alpha: float = 1.0  # FedProx Synthetic(alpha, beta)
    synthetic_beta: float = 1.0


@dataclass(frozen=True)
class ModelConfig:
    name: str = "mlp"  # logreg | mlp | cnn
    hidden: int = 64  # mlp hidden width; cnn fully connected width


@dataclass(frozen=True)
class TrainingConfig:
    """Local training of each client (the learning-rate and epochs become chain parameters)."""

    epochs: int = 5
    batch_size: int = 16
    lr: float = 0.1
    momentum: float = 0.9
    prox_mu: float = 0.0  # FedProx proximal term; 0 disables it


@dataclass(frozen=True)
class StrategyConfig:
    """Aggregation rule by name (fedray.aggregation.registry) and its settings."""

    # The default rule (the rule's own defaults; docs/incentives.md, docs/robustness.md): drop
    # updates that point against the coordinate-wise median while longer than 3x the median norm,
    # and updates longer than 10x, then centered clipping at 2x the median distance. Stricter
    # filters (every update against the median, or every update over 3x) starved clients with
    # rare labels at Dirichlet alpha 0.1.
    name: str = "direction_filter"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackConfig:
    """Byzantine clients: `fraction` of the population runs attack `name` from `start_round`."""

    name: str = "none"  # none | label_flip | sign_flip | gaussian | scaling | alie | ipm | free_rider | replay
    fraction: float = 0.0
    start_round: int = 0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainConfig:
    chain_id: str = "fedray-local"
    validators: int = 4
    clients_per_round: int = 0  # 0: every client
    round_deadline_blocks: int = 40
    block_interval_s: float = 0.2  # pause before an empty block (blocks with txs go at once)
    timeout_propose_s: float = 1.0  # round timeouts; they grow by the delta per round
    timeout_vote_s: float = 0.5
    timeout_delta_s: float = 0.5
    params: dict[str, Any] = field(
        default_factory=dict
    )  # any chain parameter (core Params) by name
    client_balance: int = 1_000_000_000
    client_stake: int = 1_000
    validator_stake: int = 100_000
    max_block_txs: int = 5_000


@dataclass(frozen=True)
class RuntimeConfig:
    address: str | None = None  # an existing Ray cluster (or RAY_ADDRESS); None: embedded local Ray
    num_cpus: int | None = None  # embedded Ray only; None: all cores
    object_store_mb: int = 256  # embedded Ray only
    client_pools: int = 2  # actors hosting the virtual clients
    pool_num_cpus: float = 0.3
    validator_num_cpus: float = 0.2
    aggregation_threads: int = 1
    progress: bool = True  # tqdm progress bar


@dataclass(frozen=True)
class FaultsConfig:
    """Fault injection for tests and demos (-1: off). Rounds count from 0."""

    kill_pool_round: int = -1  # ray.kill the first client pool when this round opens
    kill_validator_round: int = -1  # ray.kill the last validator when this round opens
    # a client of the first pool delivers a payload other than the one its transaction signed
    # (and signs that delivery): refused at ingress, proven by evidence, slashed
    corrupt_payload_round: int = -1


@dataclass(frozen=True)
class GovernanceAction:
    """A proposal the driver submits (signed by validator 0) when `round` opens, and how the
    validators and clients then vote (yes | no | abstain | veto | none)."""

    round: int = 0
    kind: str = "param_change"  # param_change | admit | ban | model_release
    key: str = ""  # param_change: a whitelisted chain parameter
    value: str = ""
    account: str = ""  # admit, ban: "client:<index>", "validator:<index>" or a hex public key
    role: str = ""  # admit: client | validator
    model: str = "current"  # model_release: "current" (the global model then) or a hex digest
    terms: str = ""  # model_release
    expedited: bool = False
    validator_votes: str = "yes"
    client_votes: str = "none"


@dataclass(frozen=True)
class RunConfig:
    name: str = "default"
    seed: int = 0
    rounds: int = 10
    clients: int = 20
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    governance: list[GovernanceAction] = field(default_factory=list)
    baseline: bool = True  # also train the centralized baseline (same model, epoch budget)


def conf_dir() -> Path:
    """Where YAML presets and groups live: $FEDRAY_CONF_DIR, ./conf, or the source tree's conf/."""
    env = os.environ.get("FEDRAY_CONF_DIR")
    if env:
        return Path(env)
    local = Path.cwd() / "conf"
    if (local / "default.yaml").exists():
        return local
    return Path(__file__).resolve().parent.parent / "conf"


def _keys_at(node: Any, path: list[str]) -> list[str]:
    for part in path:
        node = getattr(node, part, None) if dataclasses.is_dataclass(node) else None
    if dataclasses.is_dataclass(node):
        return [f.name for f in dataclasses.fields(node)]
    return []


def _explain(exc: OmegaConfBaseException) -> ConfigError:
    key = str(getattr(exc, "full_key", "") or getattr(exc, "key", "") or "")
    if isinstance(exc, ConfigKeyError) or "not in" in str(exc):
        parts = key.split(".") if key else []
        valid = _keys_at(RunConfig(), parts[:-1])
        near = difflib.get_close_matches(parts[-1] if parts else key, valid, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        where = ".".join(parts[:-1]) or "the top level"
        return ConfigError(
            f"unknown config key '{key}'.{hint} Valid keys at {where}: {', '.join(valid)}"
        )
    if isinstance(exc, ValidationError):
        return ConfigError(f"wrong type for config key '{key}': {exc.msg}")
    return ConfigError(f"invalid config: {exc}")


def _merge_override(cfg: DictConfig, item: str) -> DictConfig:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value")
    key, value = item.split("=", 1)
    if key in GROUPS and "." not in value:
        group_file = conf_dir() / key / f"{value}.yaml"
        if group_file.exists():
            content = OmegaConf.load(group_file)
            if key in ("strategy", "attack"):
                # A rule's params belong to that rule: the group replaces the node (defaults of
                # its dataclass, then the file) instead of merging into the previous rule's params.
                node = OmegaConf.merge(
                    OmegaConf.structured(type(getattr(RunConfig(), key))), content
                )
                data = OmegaConf.to_container(cfg)
                assert isinstance(data, dict)
                data[key] = OmegaConf.to_container(node)
                return OmegaConf.merge(OmegaConf.structured(RunConfig), data)  # type: ignore[return-value]
            return OmegaConf.merge(cfg, {key: content})  # type: ignore[return-value]
        # A bare name without a group file sets the group's name (e.g. attack=none).
        return OmegaConf.merge(cfg, OmegaConf.from_dotlist([f"{key}.name={value}"]))  # type: ignore[return-value]
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))  # type: ignore[return-value]


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> RunConfig:
    """The run config: defaults, then the YAML at `path`, then `overrides` (key=value)."""
    try:
        cfg: DictConfig = OmegaConf.structured(RunConfig)
        if path is not None:
            p = Path(path)
            if not p.exists():
                raise ConfigError(f"config file {p} does not exist")
            cfg = OmegaConf.merge(cfg, OmegaConf.load(p))  # type: ignore[assignment]
        for item in overrides:
            cfg = _merge_override(cfg, item)
        run = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise _explain(exc) from None
    assert isinstance(run, RunConfig)
    validate(run)
    return run


def validate(cfg: RunConfig) -> None:
    """Semantic checks OmegaConf's types cannot express; names the key at fault."""
    from fedray.aggregation.registry import make_config

    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"config key '{key}': {msg}")

    need(cfg.rounds >= 1, "rounds", "must be at least 1")
    need(cfg.clients >= 1, "clients", "must be at least 1")
    need(cfg.chain.validators >= 1, "chain.validators", "must be at least 1")
    need(0 <= cfg.attack.fraction < 1, "attack.fraction", "must be in [0, 1)")
    need(cfg.runtime.client_pools >= 1, "runtime.client_pools", "must be at least 1")
    need(cfg.chain.clients_per_round >= 0, "chain.clients_per_round", "must be >= 0")
    need(cfg.chain.round_deadline_blocks >= 2, "chain.round_deadline_blocks", "must be >= 2")
    try:
        make_config(cfg.strategy.name, dict(cfg.strategy.params))
    except Exception as exc:  # the registry names the closest valid rule or key
        raise ConfigError(f"config key 'strategy': {exc}") from None
    from fedray.learning.attacks import make_attack
    from fedray.learning.datasets import DATASETS
    from fedray.learning.models import MODELS
    from fedray.learning.partition import SCHEMES

    for key, value, options in (
        ("data.name", cfg.data.name, DATASETS),
        ("data.partition", cfg.data.partition, SCHEMES),
        ("model.name", cfg.model.name, MODELS),
    ):
        near = difflib.get_close_matches(value, options, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        need(value in options, key, f"unknown value {value!r}{hint}; valid: {', '.join(options)}")
    if cfg.attack.name != "none":
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
    if cfg.data.partition == "natural":
        need(cfg.data.name == "synthetic", "data.partition", "natural needs data.name=synthetic")
        need(cfg.clients == 30, "clients", "Synthetic has 30 natural users: set clients=30")


def to_yaml(cfg: RunConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
