"""The client-pool actor: many virtual clients in one process (`federation/clients.ClientPool`).

Per round it reads the round from a validator (the chain, not the driver, says which global model
hash to trust), receives the global model by object reference (put once per round by the driver),
trains its selected clients, puts each update into the object store as numpy arrays and sends the
signed transactions with the payload references to every validator's ingress in one call each.
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


class NoValidatorError(FedrayError):
    """No validator the pool was given answered (all of them died)."""

    code = "no_validator"


async def first_alive(validators: list[Any], method: str, *args: Any) -> Any:
    """Call `method` on the first validator that answers."""
    last: Exception | None = None
    for v in validators:
        try:
            return await getattr(v, method).remote(*args)
        except ray.exceptions.RayActorError as exc:
            last = exc
    raise NoValidatorError(f"no validator answered {method}") from last


class PoolNode:
    def __init__(self, cfg: RunConfig, clients: list[int], corrupt_round: int = -1) -> None:
        self.pool = ClientPool(cfg, clients)
        self.corrupt_round = corrupt_round  # fault injection: one payload altered after signing

    def public_keys(self) -> dict[int, bytes]:
        return self.pool.public_keys()

    async def train_round(
        self,
        round_: int,
        global_model: dict[str, np.ndarray],
        validators: list[Any],
        ingresses: list[Any],
    ) -> dict[str, Any]:
        info: RoundInfo = await first_alive(validators, "round_info")
        if not info.open or info.round != round_:
            return {"round": round_, "clients": 0, "skipped": "round not open"}
        mine = [k for k in info.selected if k in self.pool.public]
        if not mine:
            return {"round": round_, "clients": 0}
        nonces = await first_alive(validators, "account_nonces", mine)
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
        results = [
            a if isinstance(a, dict) else {"admitted": 0, "rejected": ["ingress_unavailable"]}
            for a in answers
        ]
        return {
            "round": round_,
            "clients": len(subs),
            "train_s": train_s,
            "sent_at": sent_at,
            "payload_bytes": int(sum(a.nbytes for s in subs for a in s.payload.values())),
            "ingress": results,
        }

    async def vote(
        self, proposal_id: int, option: str, validators: list[Any], ingresses: list[Any]
    ) -> int:
        """Sign and send every client's vote on `proposal_id`; returns how many were sent."""
        keys = list(self.pool.public)
        nonces = await first_alive(validators, "account_nonces", keys)
        batch = [(raw, None, b"") for raw in self.pool.votes(proposal_id, option, nonces)]
        await asyncio.gather(*(i.submit.remote(batch) for i in ingresses), return_exceptions=True)
        return len(batch)


PoolActor = ray.remote(PoolNode)
