"""Run configuration: OmegaConf structured configs bound to frozen dataclasses.

`load_config(path, overrides)` merges, in order: the dataclass defaults (which are the default run),
an optional YAML file, then `key=value` overrides. An override whose key is a config *group*
(a directory of fedray/conf/ or of $FEDRAY_CONF_DIR: `strategy`, `attack`, `data`, ...) and whose
value names a file in it merges that file into the group, Hydra style (`strategy=krum`);
`preset=minimal` merges a whole run config. Any other override sets one key (`rounds=3`,
`strategy.params.norm_ratio=2.0`). Presets merge first, then other group picks, then single keys,
whatever their order on the command line, so `attack.fraction=0.3 attack=sign_flip` keeps 0.3. Training settings left unset
(`training.epochs`, `training.lr`) take the model's defaults (`MODEL_TRAINING`), resolved here so
a run's saved config.yaml holds the values it ran with. Every mistake (unknown keys, wrong types,
YAML that does not parse, a file that is not UTF-8, a merge of incompatible nodes, a value out of
range: `fedray.checks`) is one `ConfigError` line naming the key or file.

Deliberately ignored: Hydra's multirun and interpolation resolvers (Ray Tune sweeps call
`load_config` per trial instead).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedray.config_extensions import custom_strategies as custom_strategies
from fedray.config_extensions import prepare_imports as prepare_imports
from fedray.config_extensions import register_strategies as register_strategies
from fedray.config_extensions import validate_extensions
from fedray.config_files import (
    explain,
    is_group_pick,
    is_preset_pick,
    load_yaml,
    merge_override,
    one_line,
)
from fedray.errors import ConfigError

MODEL_TRAINING: dict[str, tuple[int, float]] = {
    # model: (local epochs, learning rate) with SGD momentum 0.9 and batch 16. Chosen so that the
    # centralized baseline learns on every shipped data set (the CNN diverges at lr 0.1).
    "logreg": (5, 0.1),
    "mlp": (5, 0.1),
    "cnn": (2, 0.01),
}


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"  # digits | mnist5k | synthetic | synthetic_users (one user per client)
    partition: str = "iid"  # iid | dirichlet | shards | natural
    alpha: float = 0.5  # dirichlet concentration (smaller: more label skew)
    min_partition_size: int = 10  # dirichlet: redraw until every client has this many samples
    classes_per_client: int = 2  # shards
    test_fraction: float = 0.2
    synthetic_alpha: float = 1.0  # FedProx Synthetic(alpha, beta)
    synthetic_beta: float = 1.0
    loader: str | None = None  # import path of a DatasetLoader (docs/extending.md); name: a label
    params: dict[str, Any] = field(default_factory=dict)  # the loader's keyword arguments


@dataclass(frozen=True)
class ModelConfig:
    name: str = "mlp"  # logreg | mlp | cnn
    hidden: int = 64  # mlp hidden width; cnn fully connected width
    factory: str | None = None  # import path of a ModelFactory (docs/extending.md); name: a label
    params: dict[str, Any] = field(default_factory=dict)  # the factory's keyword arguments


@dataclass(frozen=True)
class TrainingConfig:
    """Local training of each client (the learning-rate and epochs become chain parameters).
    `epochs` and `lr` left null take the model's defaults (`MODEL_TRAINING`)."""

    epochs: int | None = None
    batch_size: int = 16
    lr: float | None = None
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
    factory: str | None = None  # import path of a StrategyFactory, registered as `name`


@dataclass(frozen=True)
class AttackConfig:
    """Byzantine clients: `fraction` of the population runs attack `name` from `start_round`."""

    name: str = "none"  # none | label_flip | sign_flip | gaussian | scaling | alie | ipm | free_rider | replay
    fraction: float = 0.0
    start_round: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    factory: str | None = None  # import path of an AttackFactory (docs/extending.md); name: a label


@dataclass(frozen=True)
class PrivacyConfig:
    """Client-level differential privacy (docs/privacy.md): every honest client clips its update
    to `clip_norm` and adds Gaussian noise, all of it (`local`) or a 1/sqrt(k) share of it
    (`distributed`: the k updates of a round sum to the full noise). `noise_multiplier` null:
    the smallest one the accountant finds for `epsilon` over each client's planned
    participations (rounds x clients per round / clients, rounded up). The chain enforces the
    budget: a client whose next participation would pass `epsilon` is not selected."""

    mode: str = "none"  # none | local | distributed
    epsilon: float = 8.0  # target epsilon per client (.inf: no budget; needs noise_multiplier)
    delta: float = 1e-5
    clip_norm: float = 1.0  # C: L2 norm of the whole update
    noise_multiplier: float | None = None  # z; null: derived from epsilon


@dataclass(frozen=True)
class ChainConfig:
    chain_id: str = "fedray-local"
    validators: int = 4
    clients_per_round: int = 0  # 0: every client
    # A round closes once every selected client answered; its deadline only cuts clients that
    # never answer, and needs both this many blocks and this much block (BFT) time.
    round_deadline_blocks: int = 40
    round_timeout_s: float = 600.0
    block_interval_s: float = 0.2  # pause before an empty block (blocks with txs go at once)
    # while the open round waits for updates, the proposer holds its block up to this long for
    # them (the admission that completes them ends the wait): a round's updates share one block
    round_gather_s: float = 0.5
    timeout_propose_s: float = 1.0  # round timeouts; they grow by the delta per round
    timeout_vote_s: float = 0.5
    timeout_delta_s: float = 0.5
    timeout_commit_s: float = 0.1  # after a decision, the next proposer waits for late precommits
    params: dict[str, Any] = field(
        default_factory=dict
    )  # any chain parameter (core Params) by name
    client_balance: int = 1_000_000_000
    client_stake: int = 1_000
    validator_stake: int = 100_000
    max_block_txs: int = 5_000


@dataclass(frozen=True)
class RuntimeConfig:
    address: str | None = (
        None  # cluster to join (or RAY_ADDRESS; auto: the recorded one); None: embedded Ray
    )
    allow_unauthenticated: bool = False  # join a cluster without token authentication (warns)
    num_cpus: int | None = None  # embedded Ray only; None: all cores
    object_store_mb: int = 256  # embedded Ray only
    client_pools: int = 2  # actors hosting the virtual clients
    pool_num_cpus: float = 0.3
    pool_num_gpus: float = 0.0  # GPUs (fractions allowed) per pool: its clients train on cuda
    validator_num_cpus: float = 0.2
    aggregation_threads: int = 1
    progress: bool = True  # tqdm progress bar
    checkpoint_every: int = 1  # save the global model every k rounds under checkpoints/ (0: never)
    # simulation: keys under the public dev passphrase, client keys derived from this config;
    # fresh: random keys under FEDRAY_KEY_PASSPHRASE (fedray.federation.keys)
    keys: str = "simulation"


@dataclass(frozen=True)
class FaultsConfig:
    """Fault injection for tests and demos (-1: off). Rounds count from 0."""

    kill_pool_round: int = -1  # ray.kill the first client pool when this round opens
    kill_validator_round: int = -1  # ray.kill the last validator when this round opens
    # a client of the first pool delivers a payload other than the one its transaction signed
    # (and signs that delivery): refused at ingress, proven by evidence, slashed
    corrupt_payload_round: int = -1
    slow_pool_s: float = 0.0  # the first client pool sleeps this long before each round (load)
    pool_error_round: int = (
        -1
    )  # the first client pool fails inside this round (its clients miss it)
    fail_pool_start: bool = False  # the first client pool's actor fails to build


MLFLOW_MISSING = (
    "is set but mlflow is not installed: pip install 'fedray[mlflow]' (or mlflow-skinny), "
    "or leave metrics.mlflow_uri null"
)


@dataclass(frozen=True)
class MetricsConfig:
    """Live metrics: each round's row as it closes (`federation.live`, `runtime.chain_metrics`)."""

    tensorboard: bool = True  # event files under <run dir>/tensorboard/
    ray: bool = True  # chain figures as ray.util.metrics (Ray's Prometheus endpoint, dashboard)
    log_rounds: str = "auto"  # a plain line per round: auto (when no progress bar), always, never
    mlflow_uri: str | None = None  # MLflow tracking URI (file:..., http://...); null: no MLflow
    mlflow_experiment: str = "fedray"


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
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    governance: list[GovernanceAction] = field(default_factory=list)
    baseline: bool = True  # also train the centralized baseline (same model, epoch budget)
    # directories (relative to the working directory) where import paths also resolve
    python_path: list[str] = field(default_factory=list)


def with_model_defaults(cfg: RunConfig) -> RunConfig:
    """`cfg` with unset training settings taken from its model's defaults (`MODEL_TRAINING`)."""
    t = cfg.training
    epochs, lr = MODEL_TRAINING.get(cfg.model.name, MODEL_TRAINING["mlp"])
    if t.epochs is not None and t.lr is not None:
        return cfg
    training = dataclasses.replace(
        t, epochs=epochs if t.epochs is None else t.epochs, lr=lr if t.lr is None else t.lr
    )
    return dataclasses.replace(cfg, training=training)


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> RunConfig:
    """The run config: defaults, then the YAML at `path`, then `overrides` (key=value): presets
    first, then other group picks, then single keys, each set in command-line order."""
    ordered = [i for i in overrides if is_preset_pick(i)]
    ordered += [i for i in overrides if is_group_pick(i) and not is_preset_pick(i)]
    ordered += [i for i in overrides if not is_group_pick(i)]
    try:
        cfg: DictConfig = OmegaConf.structured(RunConfig)
        if path is not None:
            cfg = OmegaConf.merge(cfg, load_yaml(Path(path)))  # type: ignore[assignment]
        for item in ordered:
            cfg = merge_override(cfg, item, RunConfig)
        run = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise explain(exc, RunConfig()) from None
    except (ValueError, TypeError, AttributeError) as exc:  # a merge OmegaConf cannot express
        raise ConfigError(f"incompatible config: {one_line(exc)}") from None
    assert isinstance(run, RunConfig)
    run = with_model_defaults(run)
    validate(run)
    return run


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
        cfg.chain.timeout_propose_s > cfg.chain.round_gather_s + cfg.chain.timeout_commit_s,
        "chain.round_gather_s",
        f"plus chain.timeout_commit_s must stay below chain.timeout_propose_s "
        f"({cfg.chain.timeout_propose_s}), or validators prevote nil while the proposer gathers "
        "a round's updates (0 turns gathering off)",
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


def to_yaml(cfg: RunConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
