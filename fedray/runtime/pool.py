"""The client-pool actor: many virtual clients in one process (`federation/clients.ClientPool`).

Per round it reads the round from an ingress (the chain, not the driver, says which global model
hash to trust and who has answered already), receives the global model by object reference (put
once per round by the driver), trains all its selected clients, puts their updates into the object
store once, as one list of numpy-array payloads, and sends the signed transactions, each naming its
slot in that list, to every validator's ingress in one call each. Clients already on chain for the
round (a resumed run) are trained again, so colluding attackers craft exactly what they crafted
before, but not sent again.

Errors end no run: a client without an update, or every client of the pool when its round fails as
a whole, sends a signed `skip` (a missed update), and the answer says why; `skip_round` is what a
pool rebuilt after a crash sends for its predecessor's round.

A pool holds ingress handles only, never a validator's. Its methods that act for its clients
(`train_round`, `skip_round`, `vote`, `restore`) take the capability the driver created it with,
so another pool's code cannot make these clients train, skip or vote; the actor is sealed and
unpickles only allowed types (`hardening`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray

from fedray.config import RunConfig
from fedray.errors import FedrayError
from fedray.federation.clients import ClientPool, PoolRound
from fedray.federation.shards import PoolShards
from fedray.node.views import RoundInfo
from fedray.runtime.access import require
from fedray.runtime.hardening import HARDENED, facade, guard_unpickling, in_ray_actor, sealed
from fedray.runtime.ingress import IngressReport

# the remote surface
POOL_METHODS = ("public_keys", "restore", "train_round", "skip_round", "vote")


class NoValidatorError(FedrayError):
    """No ingress the pool was given answered (all of them, or their validators, died)."""

    code = "no_validator"


class InjectedFault(FedrayError):
    """A failure injected by the run's `faults` config (tests and demos)."""

    code = "injected_fault"


@dataclass(frozen=True)
class PoolFaults:
    """The faults of the run's first pool (`faults.*`); other pools get none."""

    corrupt_round: int = -1  # one payload altered after signing
    slow_s: float = 0.0  # sleep before training each round, like a loaded host
    error_round: int = -1  # the round fails as a whole
    fail_start: bool = False  # the actor fails to build


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
        faults: PoolFaults | None = None,
        keys: dict[int, Any] | None = None,
        data: PoolShards | None = None,
    ) -> None:
        if in_ray_actor():
            guard_unpickling()
        self.faults = faults or PoolFaults()
        if self.faults.fail_start:
            raise InjectedFault("faults.fail_pool_start: this pool fails to build")
        self.pool = ClientPool(cfg, clients, given_keys=keys, data=data)
        self._capability = capability
        # One signing at a time, each from the nonces validators expect next (pending counted),
        # and sent before the next starts: a governance vote and an update of one client queue
        # one behind the other instead of taking the same nonce.
        self._signing = asyncio.Lock()

    def public_keys(self) -> dict[int, bytes]:
        return self.pool.public_keys()

    def restore(self, capability: bytes, saved: bytes) -> None:
        require(self._capability, capability, "restore")
        self.pool.restore(saved)

    async def train_round(
        self,
        capability: bytes,
        round_: int,
        global_model: dict[str, np.ndarray],
        ingresses: list[Any],
    ) -> dict[str, Any]:
        require(self._capability, capability, "train_round")
        # results of no closed round: a pool needs the open one only, and the history grows
        info: RoundInfo = await first_alive(ingresses, "round_info", round_)
        if not info.open or info.round != round_:
            return {"round": round_, "clients": 0, "skipped": "round not open"}
        mine = [k for k in info.selected if k in self.pool.public]
        if not mine:
            return {"round": round_, "clients": 0}
        if self.faults.slow_s > 0:
            await asyncio.sleep(self.faults.slow_s)
        async with self._signing:
            return await self._train_and_send(round_, global_model, info, mine, ingresses)

    async def _train_and_send(
        self,
        round_: int,
        global_model: dict[str, np.ndarray],
        info: RoundInfo,
        mine: list[bytes],
        ingresses: list[Any],
    ) -> dict[str, Any]:
        nonces = await first_alive(ingresses, "next_nonces", mine)
        start = time.perf_counter()
        try:
            if round_ == self.faults.error_round:
                raise InjectedFault(f"faults.pool_error_round: round {round_} fails in this pool")
            out = self.pool.train_round(
                round_,
                global_model,
                info.global_hash,
                info.selected,  # the whole round's selection: attacks reason about all of it
                nonces,
                info.fl_local_epochs,
                float(info.fl_learning_rate),
                info.privacy,
            )
        except Exception as exc:  # the pool's round failed: every one of its clients misses it
            reason = f"{type(exc).__name__}: {exc}"
            clients = sorted(self.pool.public[k] for k in mine)
            out = PoolRound(
                [], self.pool.skips(round_, clients, nonces), dict.fromkeys(clients, reason)
            )
        train_s = time.perf_counter() - start
        done = set(info.answered)
        sending = []
        for s in out.submissions:
            if self.pool.keys[s.client].public_key in done:
                continue  # on chain already (a resumed run): trained only to craft alike
            payload, signature = s.payload, s.delivery_signature
            if round_ == self.faults.corrupt_round and not sending:
                # Fault injection: this client delivers something other than what it signed in
                # its transaction (and signs the delivery): provable, so it is slashed.
                name = next(iter(payload))
                payload = {**payload, name: payload[name] + np.int32(1)}
                signature = self.pool.sign_delivery(s.client, round_, payload)
            sending.append((s.tx, payload, signature))
        # one object for the whole batch; each item names its slot (ingress.py)
        shared = ray.put([payload for _, payload, _ in sending]) if sending else None
        batch = [(tx, (shared, i), sig) for i, (tx, _, sig) in enumerate(sending)]
        skips = [
            (raw, None, b"")
            for raw, i in zip(out.skips, out.failed, strict=True)
            if self.pool.keys[i].public_key not in done
        ]
        sent_at = time.time()
        results = await self._send(ingresses, batch + skips)
        return {
            "round": round_,
            "clients": len(out.submissions),
            "train_s": train_s,
            "sent_at": sent_at,
            "payload_bytes": int(
                sum(a.nbytes for s in out.submissions for a in s.payload.values())
            ),
            "ingress": results,
            "failed": out.failed,
            "clipped": out.clipped,
            "attack_state": self.pool.saved_state(),
        }

    async def skip_round(
        self, capability: bytes, round_: int, reason: str, ingresses: list[Any]
    ) -> dict[str, Any]:
        """Declare a missed update for this pool's selected clients that have not answered
        `round_` (its previous actor crashed); returns who and why."""
        require(self._capability, capability, "skip_round")
        # results of no closed round: a pool needs the open one only, and the history grows
        info: RoundInfo = await first_alive(ingresses, "round_info", round_)
        if not info.open or info.round != round_:
            return {"round": round_, "failed": {}}
        done = set(info.answered)
        clients = sorted(
            self.pool.public[k] for k in info.selected if k in self.pool.public and k not in done
        )
        async with self._signing:
            nonces = await first_alive(
                ingresses, "next_nonces", [self.pool.keys[i].public_key for i in clients]
            )
            await self._send(
                ingresses, [(raw, None, b"") for raw in self.pool.skips(round_, clients, nonces)]
            )
        return {"round": round_, "failed": dict.fromkeys(clients, reason)}

    @staticmethod
    async def _send(
        ingresses: list[Any], batch: list[tuple[bytes, Any, bytes]]
    ) -> list[dict[str, Any]]:
        if not batch:
            return []
        answers = await asyncio.gather(
            *(i.submit.remote(batch) for i in ingresses), return_exceptions=True
        )
        return [_report(a) for a in answers]

    async def vote(
        self, capability: bytes, proposal_id: int, option: str, ingresses: list[Any]
    ) -> int:
        """Sign and send every client's vote on `proposal_id`; returns how many were sent."""
        require(self._capability, capability, "vote")
        keys = list(self.pool.public)
        async with self._signing:
            nonces = await first_alive(ingresses, "next_nonces", keys)
            batch = [(raw, None, b"") for raw in self.pool.votes(proposal_id, option, nonces)]
            await self._send(ingresses, batch)
        return len(batch)


PoolService = facade("PoolService", PoolNode, POOL_METHODS)
PoolActor = sealed(ray.remote(runtime_env=HARDENED)(PoolService))
