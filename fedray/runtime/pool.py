"""The client-pool actor: many virtual clients in one process (`federation/clients.ClientPool`).

Per round it reads the round from an ingress (the chain, not the driver, says which global model
hash to trust), receives the global model by object reference (put once per round by the driver),
trains its selected clients, puts each update into the object store as numpy arrays and sends the
signed transactions with the payload references to every validator's ingress in one call each.

A pool holds ingress handles only, never a validator's. Its methods that act for its clients
(`train_round`, `vote`) take the capability the driver created it with, so another pool's code
cannot make these clients train or vote; the actor is sealed and unpickles only allowed types
(`hardening`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import ray

from fedray.config import RunConfig
from fedray.errors import FedrayError
from fedray.federation.clients import ClientPool
from fedray.node.views import RoundInfo
from fedray.runtime.access import require
from fedray.runtime.hardening import HARDENED, facade, guard_unpickling, in_ray_actor, sealed
from fedray.runtime.ingress import IngressReport

POOL_METHODS = ("public_keys", "train_round", "vote")  # the remote surface


class NoValidatorError(FedrayError):
    """No ingress the pool was given answered (all of them, or their validators, died)."""

    code = "no_validator"


async def first_alive(ingresses: list[Any], method: str, *args: Any) -> Any:
    """Call `method` on the first ingress that answers."""
    last: Exception | None = None
    for ingress in ingresses:
        try:
            return await getattr(ingress, method).remote(*args)
        except ray.exceptions.RayError as exc:
            last = exc
    raise NoValidatorError(f"no ingress answered {method}") from last


def _report(answer: object) -> dict[str, Any]:
    if isinstance(answer, IngressReport):
        return {"admitted": answer.admitted, "rejected": list(answer.rejected)}
    return {"admitted": 0, "rejected": ["ingress_unavailable"]}


class PoolNode:
    def __init__(
        self,
        cfg: RunConfig,
        clients: list[int],
        capability: bytes,
        corrupt_round: int = -1,
        keys: dict[int, Any] | None = None,
    ) -> None:
        if in_ray_actor():
            guard_unpickling()
        self.pool = ClientPool(cfg, clients, given_keys=keys)
        self._capability = capability
        self.corrupt_round = corrupt_round  # fault injection: one payload altered after signing

    def public_keys(self) -> dict[int, bytes]:
        return self.pool.public_keys()

    async def train_round(
        self,
        capability: bytes,
        round_: int,
        global_model: dict[str, np.ndarray],
        ingresses: list[Any],
    ) -> dict[str, Any]:
        require(self._capability, capability, "train_round")
        info: RoundInfo = await first_alive(ingresses, "round_info")
        if not info.open or info.round != round_:
            return {"round": round_, "clients": 0, "skipped": "round not open"}
        mine = [k for k in info.selected if k in self.pool.public]
        if not mine:
            return {"round": round_, "clients": 0}
        nonces = await first_alive(ingresses, "account_nonces", mine)
        start = time.perf_counter()
        subs = self.pool.train_round(
            round_,
            global_model,
            info.global_hash,
            info.selected,  # the whole round's selection: attacks reason about all of it
            nonces,
            info.fl_local_epochs,
            float(info.fl_learning_rate),
        )
        train_s = time.perf_counter() - start
        batch = []
        for s in subs:
            payload, signature = s.payload, s.delivery_signature
            if round_ == self.corrupt_round and not batch:
                # Fault injection: this client delivers something other than what it signed in
                # its transaction (and signs the delivery): provable, so it is slashed.
                name = next(iter(payload))
                payload = {**payload, name: payload[name] + np.int32(1)}
                signature = self.pool.sign_delivery(s.client, round_, payload)
            batch.append((s.tx, ray.put(payload), signature))
        sent_at = time.time()
        answers = await asyncio.gather(
            *(i.submit.remote(batch) for i in ingresses), return_exceptions=True
        )
        results = [_report(a) for a in answers]
        return {
            "round": round_,
            "clients": len(subs),
            "train_s": train_s,
            "sent_at": sent_at,
            "payload_bytes": int(sum(a.nbytes for s in subs for a in s.payload.values())),
            "ingress": results,
        }

    async def vote(
        self, capability: bytes, proposal_id: int, option: str, ingresses: list[Any]
    ) -> int:
        """Sign and send every client's vote on `proposal_id`; returns how many were sent."""
        require(self._capability, capability, "vote")
        keys = list(self.pool.public)
        nonces = await first_alive(ingresses, "account_nonces", keys)
        batch = [(raw, None, b"") for raw in self.pool.votes(proposal_id, option, nonces)]
        await asyncio.gather(*(i.submit.remote(batch) for i in ingresses), return_exceptions=True)
        return len(batch)


PoolService = facade("PoolService", PoolNode, POOL_METHODS)
PoolActor = sealed(ray.remote(runtime_env=HARDENED)(PoolService))
