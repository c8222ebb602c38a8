"""The protocol half of experiments/adversary.py: attacks on a live local fedray network on Ray (four
validators with their ingress actors, fresh keys, a round open), carried out by an attacking client
(`adversary_client.Attacker`) and judged from the chain: balances, heights, agreement, files.

`ChainLab.start` builds the network the way `fedray run` wires one (validators hold the keys,
ingresses their validator's ingress capability, the client holds ingress handles only) and acts as
its operator and its honest clients. The attacks, each `(chain) -> Outcome`, are in
adversary_protocol.py.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

# LIMIT: achieved, through a power Ray gives every worker and fedray cannot take away
# (docs/security.md, "What stays open"); shown, not counted as a failure of fedray's defences.
Status = Literal["blocked", "ACHIEVED", "LIMIT", "not run", "ERROR"]
MINIMAL = Path(__file__).resolve().parents[1] / "fedray" / "conf" / "preset" / "minimal.yaml"
VICTIM, HONEST, ATTACKER = 0, 1, 5  # client indices (all six are selected in round 0)


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str


def refused(results: dict[str, str]) -> list[str]:
    """The attempts that were not refused (an answer that rejects, e.g. a list of rejections or
    a report admitting nothing, counts as refused)."""
    return [
        f"{k}: {v}"
        for k, v in results.items()
        if not (
            v.startswith(("refused", "rejected"))
            or "'code'" in v
            or "admitted 0" in v
            or "admitted=0" in v
        )
    ]


def codes(results: dict[str, str]) -> str:
    """The distinct rejection codes in `resubmit`'s answers."""
    found = {c for v in results.values() for c in v.rsplit(" ", 1)[-1].split(",") if c != "-"}
    return ", ".join(sorted(found))


@dataclass
class ChainLab:
    root: Path
    cfg: Any
    fed: Any
    keys: Any
    net: Any
    attacker: Any
    markers: Path

    @staticmethod
    def start(root: Path) -> ChainLab:
        import ray
        from adversary_client import Attacker

        from fedray.config import load_config
        from fedray.federation.keys import PASSPHRASE_ENV, make_run_keys
        from fedray.federation.plan import Federation
        from fedray.runtime.localnet import SHARED_CPU_SETTINGS, ValidatorNet

        cfg = load_config(MINIMAL, ["chain.round_deadline_blocks=100000", "runtime.keys=fresh"])
        env = {PASSPHRASE_ENV: secrets.token_urlsafe(18)}  # the operator's, for this lab
        keys = make_run_keys(Federation(cfg), 4, "fresh", env)
        fed = Federation(cfg, keys.clients)
        initial = fed.initial_model()
        genesis = fed.genesis([k.public_key for k in keys.validators], initial)
        layout = {k: (a.dtype.str, tuple(a.shape)) for k, a in initial.items()}
        net = ValidatorNet(
            root / "chain",
            genesis,
            keys.validators,
            ingress_layout=layout,
            passphrase=keys.passphrase,
            **SHARED_CPU_SETTINGS,
        )
        net.start()
        net.operator_call("put_blob", initial)
        markers = root / "markers"
        markers.mkdir(parents=True, exist_ok=True)
        attacker = ray.remote(num_cpus=0)(Attacker).remote(
            net.ingresses, keys.clients[ATTACKER].seed, genesis.chain_id
        )
        lab = ChainLab(root, cfg, fed, keys, net, attacker, markers)
        lab.until(lambda: lab.net.call("round_info")[0].open, "round 0 to open")
        return lab

    # --- the operator's and honest clients' side ------------------------------------------------
    @property
    def chain_id(self) -> str:
        return self.cfg.chain.chain_id

    def client(self, i: int) -> bytes:
        return self.keys.clients[i].public_key

    def until(self, done: Callable[[], Any], what: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
            time.sleep(0.2)

    def advance(self, blocks: int = 3) -> int:
        """Wait until every live validator committed `blocks` more heights; returns the tip."""
        target = max(self.net.heights()) + blocks
        self.net.wait_for_height(target, timeout_s=60)
        return target

    def balance(self, i: int) -> int:
        key = self.client(i)
        return int(self.net.call("accounts_info", [key])[0][key].balance)

    def nonce(self, i: int) -> int:
        key = self.client(i)
        return int(self.net.call("account_nonces", [key])[0][key])

    def update(self, i: int, fill: int = 0) -> tuple[bytes, dict[str, np.ndarray], bytes]:
        """Client `i`'s signed update of round 0 (a small fixed-point delta), payload, delivery."""
        from fedray.core.contracts.rounds import Update
        from fedray.core.contracts.slashing import delivery_message
        from fedray.core.crypto import DOMAIN_PAYLOAD
        from fedray.core.tx import make_tx
        from fedray.storage.tensors import nbytes, tensors_digest

        rng = np.random.default_rng([i, fill])
        payload = {
            name: rng.integers(-(1 << 16), 1 << 16, size=a.shape, dtype=np.int32)
            for name, a in self.fed.initial_model().items()
        }
        key = self.keys.clients[i]
        digest = tensors_digest(payload)
        tx = make_tx(key, self.chain_id, self.nonce(i), Update(0, digest, 10, nbytes(payload)))
        delivery = key.sign(DOMAIN_PAYLOAD, self.chain_id, delivery_message(0, digest))
        return tx.raw, payload, delivery

    def submit_update(self, i: int, ingresses: list[int] | None = None) -> bytes:
        """Client `i` sends its update to the given ingresses (all); returns the payload digest."""
        import ray

        from fedray.storage.tensors import tensors_digest

        raw, payload, delivery = self.update(i)
        ref = ray.put(payload)
        todo = range(len(self.net.ingresses)) if ingresses is None else ingresses
        ray.get([self.net.ingresses[g].submit.remote([(raw, ref, delivery)]) for g in todo])
        return tensors_digest(payload)

    def agree(self) -> bool:
        """Every live validator holds the same block at every common height, and none stopped."""
        statuses = self.net.call("status")
        common = min(s.height for s in statuses)
        hashes = self.net.call("block_hashes", 1, common)
        return all(h == hashes[0] for h in hashes) and all(s.failed is None for s in statuses)

    def markers_left(self) -> list[str]:
        return sorted(p.name for p in self.markers.iterdir())

    def stop(self) -> None:
        import ray

        self.net.stop()
        ray.kill(self.attacker)
