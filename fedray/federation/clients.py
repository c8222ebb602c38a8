"""A pool of virtual clients: each with its own key, data shard and optimizer state, trained in one
process. The Ray actor (`runtime/pool.py`) wraps this plain class; tests use it in-process.

One round for the pool: check the global model against the hash the chain recorded, train every
selected client of the pool (attackers train on their own data when their attack needs it, then craft
their submissions together), quantize each update to int32 fixed point, and sign one `update`
transaction per client naming the payload's digest. The payloads leave as plain numpy arrays.

Deliberately ignored: client dropout and device heterogeneity (fault tests kill whole pools).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fedray.aggregation.fixedpoint import RANGE, dequantize, quantize
from fedray.config import RunConfig
from fedray.core.contracts.governance import Vote as GovVote
from fedray.core.contracts.rounds import Update
from fedray.core.contracts.slashing import delivery_message
from fedray.core.crypto import DOMAIN_PAYLOAD
from fedray.core.tx import make_tx
from fedray.errors import FedrayError
from fedray.federation.plan import Federation
from fedray.learning.attacks import AttackContext, make_attack
from fedray.learning.models import build_model
from fedray.learning.training import train_local
from fedray.storage.tensors import nbytes, tensors_digest

# Fixed point holds |x| < 128; crafted updates are clipped just inside so they can still be sent.
_LIMIT = np.float32(RANGE - 2.0**-16)


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


@dataclass
class ClientState:
    momentum: dict[str, np.ndarray] | None = None


@dataclass
class ClientPool:
    cfg: RunConfig
    clients: list[int]
    attack_state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        torch.set_num_threads(1)
        fed = Federation(self.cfg)
        self.federation = fed
        self.keys = {i: fed.client_key(i) for i in self.clients}
        self.public = {self.keys[i].public_key: i for i in self.clients}
        self.shards = fed.shards(self.clients)
        self.attackers = tuple(i for i in fed.attackers() if i in self.keys)
        a = self.cfg.attack
        self.attack = make_attack(a.name, dict(a.params)) if self.attackers else None
        if self.attack is not None:
            rng = np.random.default_rng([self.cfg.seed, 0xDA7A])
            for i in self.attackers:  # data poisoning (label flip) happens once, locally
                self.shards[i] = self.attack.poison_data(self.shards[i], rng)
        self.model = build_model(fed.model_spec(), self.cfg.seed)
        self.param_names = [name for name, _ in self.model.named_parameters()]
        self.state = {i: ClientState() for i in self.clients}

    def sign_delivery(self, client: int, round_: int, payload: Mapping[str, np.ndarray]) -> bytes:
        """The client's signature over [round, digest of the payload it sends]."""
        message = delivery_message(round_, tensors_digest(payload))
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

    def train_round(
        self,
        round_: int,
        global_model: Mapping[str, np.ndarray],
        global_hash: bytes,
        selected: list[bytes],
        nonces: Mapping[bytes, int],
        epochs: int,
        lr: float,
    ) -> list[Submission]:
        """Updates and signed transactions of this pool's selected clients for `round_`."""
        if tensors_digest(global_model) != global_hash:
            raise GlobalModelMismatch(f"global model of round {round_} does not match the chain")
        mine = sorted(self.public[k] for k in selected if k in self.public)
        if not mine:
            return []
        # Blob stores and safetensors order tensors by name; training wants the model's order.
        global_float = dequantize({name: global_model[name] for name in self.param_names})
        tcfg = self.federation.train_config(epochs=epochs, lr=lr)
        deltas: dict[int, dict[str, np.ndarray]] = {}
        seconds: dict[int, float] = {}
        attacking = self.attack is not None and round_ >= self.cfg.attack.start_round
        crafted = [i for i in mine if attacking and i in self.attackers]
        for i in mine:
            if i in crafted and not self.attack.needs_training:  # type: ignore[union-attr]
                continue
            start = time.perf_counter()
            seed = (self.cfg.seed * 1_000_003 + round_ * 10_007 + i) & 0x7FFFFFFF
            update = train_local(self.model, global_float, self.shards[i], tcfg, seed=seed)
            deltas[i] = update.delta
            seconds[i] = time.perf_counter() - start
        if crafted:
            ctx = AttackContext(
                round=round_,
                attackers=tuple(crafted),
                honest=tuple(deltas[i] for i in crafted if i in deltas),
                global_params=global_float,
                num_clients=len(selected),
                rng=np.random.default_rng([self.cfg.seed, round_]),
                state=self.attack_state,
            )
            result = self.attack.craft(ctx)  # type: ignore[union-attr]
            self.attack_state = result.state
            for i, delta in zip(crafted, result.updates, strict=True):
                deltas[i] = {k: np.clip(v, -_LIMIT, _LIMIT) for k, v in delta.items()}
        out = []
        for i in mine:
            payload = quantize(deltas[i])
            digest = tensors_digest(payload)
            n = len(self.shards[i])
            key = self.keys[i]
            tx = make_tx(
                key,
                self.cfg.chain.chain_id,
                nonces.get(key.public_key, 0),
                Update(round_, digest, n, nbytes(payload)),
            )
            out.append(
                Submission(
                    i,
                    tx.raw,
                    payload,
                    self.sign_delivery(i, round_, payload),
                    n,
                    seconds.get(i, 0.0),
                )
            )
        return out
