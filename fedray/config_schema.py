"""The run config's schema: frozen dataclasses, one per section (data, model, training, strategy,
attack, privacy, chain, runtime, faults, metrics, governance), whose defaults are the default run,
and the models' training defaults (`MODEL_TRAINING`, `with_model_defaults`). Loading, merging and
checking a config are `fedray.config`'s and `fedray.config_checks`'s; this module imports nothing
from fedray.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

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
    # them (the admission that completes them ends the wait; peers' propose timeouts wait for
    # them too): a round's updates share one block
    round_gather_s: float = 2.0
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
    # where each validator's ingress runs: validator (in its process) | actor (a process of its
    # own in the validator's bundle, +0.05 CPU: a second core for signature checks and pinning)
    ingress: str = "validator"
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


INGRESS_MODES = ("validator", "actor")  # runtime.ingress

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
