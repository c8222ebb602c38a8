"""Everything a run derives deterministically from its config: data split and partition, model,
client keys, which clients are Byzantine, how clients are spread over pool actors, the initial model
and the genesis. The driver and every client pool call the same functions, so they agree on
everything but the data: the driver loads and partitions the data set once and hands each pool its
own clients' samples (`pool_shards`); a generated population's users are made in their pools.

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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedray.aggregation.fixedpoint import quantize
from fedray.config import RunConfig, RuntimeConfig, prepare_imports, with_model_defaults
from fedray.core.contracts.rounds import genesis_rounds
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.state import Genesis, GenesisAccount, Params
from fedray.errors import ConfigError, FedrayError
from fedray.federation.shards import ClientShards, PoolShards
from fedray.learning.datasets import DatasetSpec, DataSplit, SyntheticConfig, load_dataset
from fedray.learning.extensions import load_custom_dataset
from fedray.learning.models import ModelSpec, build_model, get_params
from fedray.learning.partition import PartitionConfig, partition
from fedray.learning.synthetic_users import SYNTHETIC_USERS, SyntheticUsers
from fedray.learning.training import TrainConfig
from fedray.storage.tensors import nbytes, tensors_digest

GENESIS_TIME_MS = 1_700_000_000_000
"""The genesis time of chains that keep no clock (in-process federations, tests)."""


@functools.lru_cache(maxsize=4)
def _split(
    name: str,
    seed: int,
    test_fraction: float,
    s_alpha: float,
    s_beta: float,
    loader: str = "",
    params_json: str = "{}",
) -> DataSplit:
    if loader:
        return load_custom_dataset(loader, seed, test_fraction, json.loads(params_json))
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
    split_key: tuple[str, int, float, float, float, str, str], scheme: PartitionConfig
) -> tuple[np.ndarray, ...]:
    """Every client's sample indices into the training set (not the samples: see `shards`);
    `split_key` is `_split`'s arguments."""
    return partition(_split(*split_key), scheme).client_indices


# an ingress actor of its own (runtime.ingress=actor), in its validator's bundle
INGRESS_CPUS = 0.05


def ingress_cpus(runtime: RuntimeConfig) -> float:
    """The CPUs a validator's ingress adds to its bundle: none when the validator hosts it."""
    return INGRESS_CPUS if runtime.ingress == "actor" else 0.0


@dataclass(frozen=True)
class Federation:
    cfg: RunConfig
    client_keys: tuple[PrivateKey, ...] | None = None  # None: derived from the config (simulation)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cfg", with_model_defaults(self.cfg))  # concrete epochs and lr
        prepare_imports(self.cfg)  # python_path on sys.path, a custom rule registered

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
        validators = self.cfg.chain.validators * (rt.validator_num_cpus + ingress_cpus(rt))
        return validators + len(self.pools()) * rt.pool_num_cpus

    def gpus_needed(self) -> float:
        """Ray GPUs the client pools reserve (`runtime.pool_num_gpus` each)."""
        return len(self.pools()) * self.cfg.runtime.pool_num_gpus

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
        params = json.dumps(dict(d.params), sort_keys=True)  # hashable, for the cache
        return _split(
            d.name,
            self.cfg.seed,
            d.test_fraction,
            d.synthetic_alpha,
            d.synthetic_beta,
            d.loader or "",
            params,
        )

    def shards(self, clients: list[int] | None = None) -> ClientShards:
        """The training shard of each client in `clients` (all when None), made when first read:
        a pool of thousands of clients holds only the shards of the clients it trains."""
        wanted = tuple(range(self.cfg.clients) if clients is None else clients)
        population = self.population()
        if population is not None:
            return ClientShards(wanted, population.train)
        indices, train = self._indices(), self.split().train
        return ClientShards(wanted, lambda k: train.subset(indices[k]))

    def pool_shards(self, clients: list[int]) -> PoolShards | None:
        """What the driver hands the pool of `clients`: their samples, cut from the split and
        partition it made once; None for a generated population, which each pool generates."""
        if self.population() is not None:
            return None
        return PoolShards.of(self.split().train, self._indices(), clients)

    def _indices(self) -> tuple[np.ndarray, ...]:
        """Every client's sample indices into the training set (the configured partition)."""
        d = self.cfg.data
        scheme = PartitionConfig(
            scheme=d.partition,
            num_clients=self.cfg.clients,
            alpha=d.alpha,
            min_size=d.min_partition_size,
            classes_per_client=d.classes_per_client,
            seed=self.cfg.seed,
        )
        params = json.dumps(dict(d.params), sort_keys=True)
        key = (d.name, self.cfg.seed, d.test_fraction, d.synthetic_alpha, d.synthetic_beta)
        indices = _partition((*key, d.loader or "", params), scheme)
        if len(indices) != self.cfg.clients:  # a natural partition has its own count
            raise ConfigError(
                f"config key 'clients': the {d.partition} partition of {self.split().name} has "
                f"{len(indices)} clients, not {self.cfg.clients}"
            )
        return indices

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

    def model_spec(self, given: PoolShards | None = None) -> ModelSpec:
        """The model's spec; a pool handed its shards (`given`) reads the data's shape from them
        instead of loading the data set."""
        data = given or self.split()
        shape = data.input_shape
        m = self.cfg.model
        if m.name == "cnn" and not m.factory and len(shape) == 1:
            side = int(round(shape[0] ** 0.5))
            shape = (1, side, side)
        return ModelSpec(
            m.name,
            tuple(shape),
            data.num_classes,
            m.hidden,
            factory=m.factory or "",
            params=tuple(sorted(m.params.items())),
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
        a = self.cfg.attack
        if (a.name == "none" and not a.factory) or a.fraction <= 0:
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
            **self.privacy_params(),
        )
        # chain.params overrides any parameter by name (validated by config.validate).
        types = {f.name: f.type for f in dataclasses.fields(Params)}
        overrides = {
            k: (int(v) if types[k] in (int, "int") else str(v)) for k, v in c.params.items()
        }
        return dataclasses.replace(params, **overrides)

    def planned_participations(self) -> int:
        """How often a client takes part in the run on average, rounded up: rounds x k / N."""
        per_round = self.cfg.chain.clients_per_round or self.cfg.clients
        return max(
            1, math.ceil(self.cfg.rounds * min(per_round, self.cfg.clients) / self.cfg.clients)
        )

    def noise_multiplier(self) -> float:
        """z: the configured one, or the accountant's for the target epsilon over the planned
        participations (each a Gaussian mechanism at sampling rate 1: selection is public),
        rounded up to the chain's thousandths."""
        pc = self.cfg.privacy
        z = pc.noise_multiplier
        if z is None:
            from fedray.learning.accounting import noise_multiplier

            z = noise_multiplier(pc.epsilon, pc.delta, 1.0, self.planned_participations())
        return math.ceil(z * 1000) / 1000

    def privacy_params(self) -> dict[str, Any]:
        """The chain's `dp_*` parameters: C in 2**-16 units, z in thousandths, the target and the
        accountant's epsilon table (cumulative micro-epsilon per participation) as integers."""
        pc = self.cfg.privacy
        if pc.mode == "none":
            return {}
        from fedray.learning.accounting import MICRO, epsilon_table

        z = self.noise_multiplier()
        budget = math.isfinite(pc.epsilon)
        # the table runs one entry past the target (or to the run's length), so the chain sees
        # where a client's budget ends
        table: list[int] = []
        for micro in epsilon_table(z, pc.delta, self.cfg.rounds):
            table.append(micro)
            if budget and micro > pc.epsilon * MICRO:
                break
        return {
            "dp_mode": pc.mode,
            "dp_clip_norm_fp": max(1, int(round(pc.clip_norm * 65536))),
            "dp_noise_milli": int(round(z * 1000)),
            "dp_epsilon_micro": int(math.floor(pc.epsilon * MICRO)) if budget else 0,
            "dp_delta": f"{pc.delta:.12f}".rstrip("0"),
            "dp_epsilon_table": ",".join(str(v) for v in table),
        }

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
