"""Everything a run derives deterministically from its config: data split and partition, model,
client keys, which clients are Byzantine, how clients are spread over pool actors, the initial model
and the genesis. The driver and every client pool call the same functions, so they agree without
shipping data around: each pool rebuilds only its own clients' shards, and raw training data never
leaves a pool actor.

Client keys come from the run seed (`key_from_seed`) unless the federation is given them: right for
simulations, where the driver must know every public key for the genesis; `runtime.keys=fresh`
hands it fresh ones (`federation.keys`), and a real deployment registers clients' own keys on chain.

Ray-free: pools and the driver import it inside their actors/processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedray.aggregation.fixedpoint import quantize
from fedray.config import RunConfig, with_model_defaults
from fedray.core.contracts.rounds import genesis_rounds
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.state import Genesis, GenesisAccount, Params
from fedray.errors import ConfigError, FedrayError
from fedray.federation.shards import ClientShards
from fedray.learning.datasets import DatasetSpec, DataSplit, SyntheticConfig, load_dataset
from fedray.learning.models import ModelSpec, build_model, get_params
from fedray.learning.partition import PartitionConfig, partition
from fedray.learning.synthetic_users import SYNTHETIC_USERS, SyntheticUsers
from fedray.learning.training import TrainConfig
from fedray.storage.tensors import nbytes, tensors_digest

GENESIS_TIME_MS = 1_700_000_000_000
"""The genesis time of chains that keep no clock (in-process federations, tests)."""


@functools.lru_cache(maxsize=4)
def _split(name: str, seed: int, test_fraction: float, s_alpha: float, s_beta: float) -> DataSplit:
    synthetic = SyntheticConfig(alpha=s_alpha, beta=s_beta, seed=seed)
    return load_dataset(DatasetSpec(name, seed, test_fraction, synthetic))


@functools.lru_cache(maxsize=4)
def _population(
    clients: int, seed: int, test_fraction: float, s_alpha: float, s_beta: float
) -> SyntheticUsers:
    return SyntheticUsers(clients, s_alpha, s_beta, test_fraction=test_fraction, seed=seed)


@functools.lru_cache(maxsize=4)
def _evaluation_split(population: SyntheticUsers) -> DataSplit:
    return population.evaluation_split()


@functools.lru_cache(maxsize=4)
def _partition(
    name: str,
    seed: int,
    test_fraction: float,
    s_alpha: float,
    s_beta: float,
    scheme: PartitionConfig,
) -> tuple[np.ndarray, ...]:
    """Every client's sample indices into the training set (not the samples: see `shards`)."""
    return partition(_split(name, seed, test_fraction, s_alpha, s_beta), scheme).client_indices


INGRESS_CPUS = 0.05  # each validator's ingress actor, in the validator's bundle


@dataclass(frozen=True)
class Federation:
    cfg: RunConfig
    client_keys: tuple[PrivateKey, ...] | None = None  # None: derived from the config (simulation)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cfg", with_model_defaults(self.cfg))  # concrete epochs and lr

    def preflight(self) -> None:
        """Everything a run derives from its config, built once before Ray starts, so a config the
        data or the chain cannot take fails as one `ConfigError` line instead of inside an actor:
        the partition (a client count the data set cannot split), the model, the chain
        parameters."""
        try:
            self._check_population()
            self.shards()
            build_model(self.model_spec(), self.cfg.seed)
            self.params()
        except ConfigError:
            raise
        except (FedrayError, ValueError, TypeError) as exc:
            raise ConfigError(f"the config cannot run: {type(exc).__name__}: {exc}") from None

    def cpus_needed(self) -> float:
        """Ray CPUs the run's actors reserve: each validator with its ingress, and each pool."""
        rt = self.cfg.runtime
        validators = self.cfg.chain.validators * (rt.validator_num_cpus + INGRESS_CPUS)
        return validators + len(self.pools()) * rt.pool_num_cpus

    # --- data and model -----------------------------------------------------------------------
    def population(self) -> SyntheticUsers | None:
        """The generated population of `data.name=synthetic_users` (None for the other sets)."""
        d = self.cfg.data
        if d.name != SYNTHETIC_USERS:
            return None
        return _population(
            self.cfg.clients, self.cfg.seed, d.test_fraction, d.synthetic_alpha, d.synthetic_beta
        )

    def split(self) -> DataSplit:
        """The data set's train/test split; for a generated population, the evaluation users'
        parts (`SyntheticUsers.evaluation_split`)."""
        population = self.population()
        if population is not None:
            return _evaluation_split(population)
        d = self.cfg.data
        return _split(d.name, self.cfg.seed, d.test_fraction, d.synthetic_alpha, d.synthetic_beta)

    def shards(self, clients: list[int] | None = None) -> ClientShards:
        """The training shard of each client in `clients` (all when None), made when first read:
        a pool of thousands of clients holds only the shards of the clients it trains."""
        wanted = tuple(range(self.cfg.clients) if clients is None else clients)
        population = self.population()
        if population is not None:
            return ClientShards(wanted, population.train)
        d = self.cfg.data
        scheme = PartitionConfig(
            scheme=d.partition,
            num_clients=self.cfg.clients,
            alpha=d.alpha,
            min_size=d.min_partition_size,
            classes_per_client=d.classes_per_client,
            seed=self.cfg.seed,
        )
        key = (d.name, self.cfg.seed, d.test_fraction, d.synthetic_alpha, d.synthetic_beta)
        indices, train = _partition(*key, scheme), self.split().train
        return ClientShards(wanted, lambda k: train.subset(indices[k]))

    def _check_population(self) -> None:
        """A data set too small for the population is refused with what to use instead."""
        if self.population() is not None:
            return
        samples = len(self.split().train)
        if self.cfg.clients > samples:
            raise ConfigError(
                f"{self.cfg.data.name} has {samples} training samples, fewer than "
                f"clients={self.cfg.clients}: use data={SYNTHETIC_USERS} (FedProx "
                "Synthetic(alpha, beta), one generated user per client) or fewer clients"
            )

    def model_spec(self) -> ModelSpec:
        split = self.split()
        shape = split.input_shape
        if self.cfg.model.name == "cnn" and len(shape) == 1:
            side = int(round(shape[0] ** 0.5))
            shape = (1, side, side)
        return ModelSpec(
            self.cfg.model.name, tuple(shape), split.num_classes, self.cfg.model.hidden
        )

    def train_config(self, epochs: int | None = None, lr: float | None = None) -> TrainConfig:
        t = self.cfg.training
        assert t.epochs is not None and t.lr is not None  # resolved in __post_init__
        return TrainConfig(
            epochs=epochs or t.epochs,
            batch_size=t.batch_size,
            lr=lr or t.lr,
            momentum=t.momentum,
            prox_mu=t.prox_mu,
        )

    def initial_model(self) -> dict[str, np.ndarray]:
        """The seeded initial model in int32 fixed point (the chain's canonical form)."""
        return quantize(get_params(build_model(self.model_spec(), self.cfg.seed)))

    # --- participants -------------------------------------------------------------------------
    def client_key(self, index: int) -> PrivateKey:
        if self.client_keys is not None:
            return self.client_keys[index]
        return key_from_seed(f"{self.cfg.chain.chain_id}/{self.cfg.seed}/client/{index}".encode())

    def attackers(self) -> tuple[int, ...]:
        """A seeded sample of round(fraction * clients) client indices."""
        if self.cfg.attack.name == "none" or self.cfg.attack.fraction <= 0:
            return ()
        count = int(round(self.cfg.attack.fraction * self.cfg.clients))
        rng = np.random.default_rng([self.cfg.seed, 0xA77AC])
        return tuple(sorted(int(i) for i in rng.choice(self.cfg.clients, count, replace=False)))

    def pools(self) -> list[list[int]]:
        """Client indices per pool actor: honest clients split evenly over `client_pools`, and
        attackers together in one extra pool, since colluding attackers coordinate anyway."""
        bad = set(self.attackers())
        honest = [i for i in range(self.cfg.clients) if i not in bad]
        n = max(1, min(self.cfg.runtime.client_pools, len(honest)))
        pools = [
            list(chunk) for chunk in np.array_split(np.array(honest, dtype=int), n) if len(chunk)
        ]
        pools = [[int(i) for i in p] for p in pools]
        if bad:
            pools.append(sorted(bad))
        return pools

    # --- chain --------------------------------------------------------------------------------
    def params(self) -> Params:
        c, t = self.cfg.chain, self.cfg.training
        per_round = c.clients_per_round or self.cfg.clients
        params = Params(
            max_block_txs=c.max_block_txs,
            min_stake_client=min(100, c.client_stake),
            min_stake_validator=min(1000, c.validator_stake),
            fl_clients_per_round=per_round,
            fl_round_deadline=c.round_deadline_blocks,
            fl_round_timeout_ms=int(round(c.round_timeout_s * 1000)),
            fl_max_rounds=self.cfg.rounds,
            fl_rule=self.cfg.strategy.name,
            fl_rule_config=json.dumps(dict(self.cfg.strategy.params), sort_keys=True),
            fl_local_epochs=t.epochs,
            fl_batch_size=t.batch_size,
            fl_learning_rate=repr(float(t.lr)),
        )
        # chain.params overrides any parameter by name (validated by config.validate).
        types = {f.name: f.type for f in dataclasses.fields(Params)}
        overrides = {
            k: (int(v) if types[k] in (int, "int") else str(v)) for k, v in c.params.items()
        }
        return dataclasses.replace(params, **overrides)

    def genesis(
        self,
        validator_keys: list[bytes],
        initial: dict[str, np.ndarray],
        genesis_time_ms: int = GENESIS_TIME_MS,
    ) -> Genesis:
        """The chain's genesis. `genesis_time_ms` is when the chain starts: a run passes its start
        time, since block time may grow by at most `max_block_time_step_ms` a block and a genesis
        in the past would take thousands of blocks to catch up with the clock (and every time
        budget in BFT time would expire at once). Only block hashes depend on it, never a model."""
        c = self.cfg.chain
        accounts = [
            GenesisAccount(k, balance=c.client_balance, stake=c.validator_stake, is_validator=True)
            for k in validator_keys
        ]
        accounts += [
            GenesisAccount(
                self.client_key(i).public_key,
                balance=c.client_balance,
                stake=c.client_stake,
                is_client=True,
            )
            for i in range(self.cfg.clients)
        ]
        zero = {name: np.zeros_like(a) for name, a in initial.items()}
        rounds = genesis_rounds(tensors_digest(initial), nbytes(initial), tensors_digest(zero))
        return Genesis(
            c.chain_id, genesis_time_ms, tuple(accounts), self.params(), {"rounds": rounds}
        )


def run_key_labels(chain_dir: Path) -> dict[bytes, str]:
    """Names of the keys of the run that `chain_dir` belongs to (none if it is not in a run)."""
    from fedray.config import load_config
    from fedray.storage.keystore import DEV_PASSPHRASE, KeyStore

    labels: dict[bytes, str] = {}
    for parent in chain_dir.resolve().parents:
        if (parent / "keys.json").exists():  # written by every run (federation.keys)
            return public_labels(json.loads((parent / "keys.json").read_text()))
        if (parent / "config.yaml").exists() and (parent / "chain").is_dir():
            fed = Federation(load_config(parent / "config.yaml"))
            labels.update(
                {fed.client_key(i).public_key: f"client-{i}" for i in range(fed.cfg.clients)}
            )
            for d in sorted((parent / "chain").glob("validator-*")):
                with contextlib.suppress(FedrayError):  # a key under another passphrase stays hex
                    labels[KeyStore(d / "keys", DEV_PASSPHRASE).load("validator").public_key] = (
                        d.name
                    )
            break
    return labels


def public_labels(public: dict[str, Any]) -> dict[bytes, str]:
    """Account labels from the public keys a run wrote to keys.json."""
    labels = {bytes.fromhex(h): f"client-{i}" for i, h in enumerate(public.get("clients", []))}
    labels.update(
        {bytes.fromhex(h): f"validator-{i}" for i, h in enumerate(public.get("validators", []))}
    )
    return labels
