"""A pool of virtual clients: each with its own key, data shard and optimizer state, trained in one
process. The Ray actor (`runtime/pool.py`) wraps this plain class; tests use it in-process.

One round for the pool: check the global model against the hash the chain recorded, run the client
round of its selected clients (`fedray.learning.client_round`: train, craft, clip, quantize), and sign
one `update` transaction per client naming the payload's digest, and one `skip` transaction per
client that has no update (its training or its attack failed: a missed update, declared so the
round does not wait for its deadline). The payloads leave as plain numpy arrays.

The pool owns its attack state (what a stateful attack such as replay carries across rounds);
`attack_state` is what the driver saves after each round and hands to a rebuilt pool (`restore`),
so a resumed run crafts what an uninterrupted one would.

Deliberately ignored: client dropout and device heterogeneity (fault tests kill whole pools).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fedray.aggregation.fixedpoint import dequantize
from fedray.config import RunConfig
from fedray.core.contracts.governance import Vote as GovVote
from fedray.core.contracts.rounds import Skip, Update
from fedray.core.contracts.slashing import delivery_message
from fedray.core.crypto import DOMAIN_PAYLOAD, PrivateKey
from fedray.core.tx import make_tx
from fedray.errors import FedrayError
from fedray.federation.plan import Federation
from fedray.federation.shards import PoolShards
from fedray.learning.attacks import make_attack
from fedray.learning.client_round import client_round
from fedray.learning.dp import NoiseSettings
from fedray.learning.errors import DatasetError
from fedray.learning.extensions import make_custom_attack
from fedray.learning.models import build_model, state_names
from fedray.storage.tensors import nbytes, tensors_digest
from fedray.storage.trees import tree_from_bytes, tree_to_bytes


class GlobalModelMismatch(FedrayError):
    """The global model handed to the pool does not hash to what the chain recorded."""

    code = "global_mismatch"


@dataclass(frozen=True)
class Submission:
    """A client's update transaction, its payload, and its signed delivery statement."""

    client: int
    tx: bytes
    payload: dict[str, np.ndarray]
    delivery_signature: bytes
    n_samples: int
    train_seconds: float


@dataclass(frozen=True)
class PoolRound:
    """A pool's round: the updates it submits, signed `skip` transactions of the selected clients
    without one, why each of those has none, and coordinates clipped per client."""

    submissions: list[Submission]
    skips: list[bytes] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    clipped: dict[int, int] = field(default_factory=dict)


@dataclass
class ClientPool:
    cfg: RunConfig
    clients: list[int]
    attack_state: dict[str, Any] = field(default_factory=dict)
    given_keys: Mapping[int, PrivateKey] | None = None  # fresh keys; None: derived (simulation)
    data: PoolShards | None = None  # the clients' samples from the driver; None: loaded here

    def __post_init__(self) -> None:
        torch.set_num_threads(1)
        fed = Federation(self.cfg)
        self.federation = fed
        given = self.given_keys
        self.keys = {i: given[i] if given else fed.client_key(i) for i in self.clients}
        self.public = {self.keys[i].public_key: i for i in self.clients}
        if self.data is not None and list(self.data.clients) != list(self.clients):
            raise DatasetError("a pool is handed the shards of its own clients")
        self.shards = fed.shards(self.clients) if self.data is None else self.data.shards()
        self.attackers = tuple(i for i in fed.attackers() if i in self.keys)
        a = self.cfg.attack
        self.attack = None
        if self.attackers and a.factory:
            self.attack = make_custom_attack(a.factory, dict(a.params))
        elif self.attackers:
            self.attack = make_attack(a.name, dict(a.params))
        if self.attack is not None:
            rng = np.random.default_rng([self.cfg.seed, 0xDA7A])
            for i in self.attackers:  # data poisoning (label flip) happens once, locally
                self.shards[i] = self.attack.poison_data(self.shards[i], rng)
        # The GPU Ray gave the pool's actor (runtime.pool_num_gpus > 0), else the CPU.
        gpu = self.cfg.runtime.pool_num_gpus > 0 and torch.cuda.is_available()
        self.device = torch.device("cuda" if gpu else "cpu")
        self.model = build_model(fed.model_spec(self.data), self.cfg.seed).to(self.device)
        self.param_names = state_names(self.model)

    def sign_delivery(
        self,
        client: int,
        round_: int,
        payload: Mapping[str, np.ndarray],
        payload_hash: bytes | None = None,
    ) -> bytes:
        """The client's signature over [round, digest of the payload it sends] (`payload_hash`:
        that digest, when the caller computed it already)."""
        digest = tensors_digest(payload) if payload_hash is None else payload_hash
        message = delivery_message(round_, digest)
        return self.keys[client].sign(DOMAIN_PAYLOAD, self.cfg.chain.chain_id, message)

    def votes(self, proposal_id: int, option: str, nonces: Mapping[bytes, int]) -> list[bytes]:
        """Every client's signed governance vote (stake-weighted on chain)."""
        return [
            make_tx(
                key,
                self.cfg.chain.chain_id,
                nonces.get(key.public_key, 0),
                GovVote(proposal_id, option),
            ).raw
            for key in self.keys.values()
        ]

    def public_keys(self) -> dict[int, bytes]:
        return {i: k.public_key for i, k in self.keys.items()}

    def saved_state(self) -> bytes | None:
        """The attack state as bytes (`storage.trees`), or None when there is none to keep."""
        return tree_to_bytes(self.attack_state) if self.attack_state else None

    def restore(self, saved: bytes) -> None:
        """Resume from the attack state a previous pool of these clients left (`saved_state`)."""
        state = tree_from_bytes(saved)
        if not isinstance(state, dict):
            raise FedrayError("a saved attack state is a mapping")
        self.attack_state = state

    def skips(
        self, round_: int, clients: Sequence[int], nonces: Mapping[bytes, int]
    ) -> list[bytes]:
        """Signed `skip` transactions: each of `clients` declares a missed update in `round_`."""
        return [
            make_tx(
                self.keys[i],
                self.cfg.chain.chain_id,
                nonces.get(self.keys[i].public_key, 0),
                Skip(round_),
            ).raw
            for i in clients
        ]

    def train_round(
        self,
        round_: int,
        global_model: Mapping[str, np.ndarray],
        global_hash: bytes,
        selected: Sequence[bytes],
        nonces: Mapping[bytes, int],
        epochs: int,
        lr: float,
        privacy: tuple[str, int, int] = ("none", 0, 0),
    ) -> PoolRound:
        """Updates and signed transactions of this pool's clients among the round's `selected`
        (every selected client of the round, this pool's or not). `privacy`: the chain's
        (dp_mode, dp_clip_norm_fp, dp_noise_milli), what differential privacy asks of honest
        clients this round."""
        if tensors_digest(global_model) != global_hash:
            raise GlobalModelMismatch(f"global model of round {round_} does not match the chain")
        mine = sorted(self.public[k] for k in selected if k in self.public)
        if not mine:
            return PoolRound([])
        # Blob stores and safetensors order tensors by name; training wants the model's order.
        global_float = dequantize({name: global_model[name] for name in self.param_names})
        attacking = self.attack is not None and round_ >= self.cfg.attack.start_round
        out = client_round(
            self.model,
            global_float,
            self.shards,
            mine,
            self.federation.train_config(epochs=epochs, lr=lr),
            round_=round_,
            seed=self.cfg.seed,
            participants=len(selected),
            attack=self.attack if attacking else None,
            attackers=self.attackers,
            attack_state=self.attack_state,
            noise=NoiseSettings.from_chain(*privacy, len(selected)),
        )
        self.attack_state = out.attack_state
        subs = [
            self._submission(i, round_, out.payloads[i], nonces, out.seconds[i])
            for i in mine
            if i in out.payloads
        ]
        return PoolRound(
            subs, self.skips(round_, list(out.failed), nonces), out.failed, out.clipped
        )

    def _submission(
        self,
        client: int,
        round_: int,
        payload: dict[str, np.ndarray],
        nonces: Mapping[bytes, int],
        seconds: float,
    ) -> Submission:
        """Sign `client`'s update transaction (naming the payload's digest) and delivery."""
        key = self.keys[client]
        n = len(self.shards[client])
        update = Update(round_, tensors_digest(payload), n, nbytes(payload))
        tx = make_tx(key, self.cfg.chain.chain_id, nonces.get(key.public_key, 0), update)
        delivery = self.sign_delivery(client, round_, payload, update.payload_hash)
        return Submission(client, tx.raw, payload, delivery, n, seconds)
