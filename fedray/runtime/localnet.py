"""A set of validator actors on the current Ray cluster, driven from the caller's process as their
operator: create their directories, start, kill (as a crash: `ray.kill`), restart from the
directory, and query all of them. With a model layout it also gives each validator an ingress, the
face client pools hold: hosted in the validator's process (`ingress="validator"`, the default;
`ingresses[i]` is then the validator's own handle) or an actor of its own (`ingress="actor"`).
Integration tests, `fedray bench consensus` and experiments/adversary.py use it; `fedray run` has
its own driver.

The net holds the validators' keys, so it derives their operator and ingress capabilities
(`validator.Capabilities`): `operator_call` presents the operator's, `call` none.

Deliberately ignored: placement (actors go wherever Ray puts them).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray

from fedray.core.crypto import PrivateKey
from fedray.core.encoding import encode
from fedray.core.state import Genesis
from fedray.runtime.access import Capabilities
from fedray.runtime.faces import NodeStatus
from fedray.runtime.ingress import IngressActor, Layout
from fedray.runtime.node_settings import prepare_node_dir
from fedray.runtime.validator import ValidatorActor
from fedray.storage.keystore import DEV_PASSPHRASE

SHARED_CPU_SETTINGS = {
    # Timeouts and pacing for a small local network on a few shared cores (tests, experiments):
    # long enough that a loaded machine does not look like a faulty peer.
    "timeout_propose_s": 0.8,
    "timeout_vote_s": 0.3,
    "timeout_delta_s": 0.2,
    "block_interval_s": 0.1,
    "gossip_s": 0.3,
}


class ValidatorNet:
    def __init__(
        self,
        root: str | Path,
        genesis: Genesis,
        keys: Sequence[PrivateKey],
        actor_options: dict[str, Any] | None = None,
        ingress_layout: Layout | None = None,
        ingress: str = "validator",
        **settings: Any,
    ) -> None:
        self.genesis = genesis
        self.raw_genesis = encode(genesis.to_canonical())
        passphrase = settings.get("passphrase", DEV_PASSPHRASE)  # of the validators' key files
        self.dirs = [
            prepare_node_dir(Path(root) / f"validator-{i}", k, passphrase)
            for i, k in enumerate(keys)
        ]
        self.caps = [Capabilities.of(k) for k in keys]
        self.settings = settings
        self.actor_options = {"num_cpus": 0, **(actor_options or {})}
        self.ingress_layout = ingress_layout
        self.hosted = ingress == "validator"  # else an ingress actor per validator
        self.handles: list[Any | None] = [None] * len(self.dirs)
        self.ingresses: list[Any | None] = [None] * len(self.dirs)

    @property
    def live(self) -> list[int]:
        return [i for i, h in enumerate(self.handles) if h is not None]

    def start(self, indices: Sequence[int] | None = None) -> None:
        """Create (or re-create from their directories) the given validators, with their
        ingresses, and (re)connect all."""
        todo = range(len(self.dirs)) if indices is None else indices
        for i in todo:
            if self.handles[i] is None:
                hosting = self.hosted and self.ingress_layout is not None
                extra = {"ingress_layout": self.ingress_layout} if hosting else {}
                self.handles[i] = ValidatorActor.options(**self.actor_options).remote(
                    str(self.dirs[i]), self.raw_genesis, **extra, **self.settings
                )
                if hosting:
                    self.ingresses[i] = self.handles[i]
            if self.ingress_layout is not None and self.ingresses[i] is None:
                self.ingresses[i] = IngressActor.options(num_cpus=0).remote(
                    str(self.dirs[i]),
                    self.genesis.chain_id,
                    self.genesis.params.max_tx_bytes,
                    self.ingress_layout,
                    self.handles[i],
                    self.caps[i].ingress,
                    verify_workers=self.settings.get("verify_workers", 0),
                )
        live = [h for h in self.handles if h is not None]
        self.operator_call("connect", live)
        self.operator_call("start", indices=list(todo))

    def kill(self, i: int, timeout_s: float = 30.0) -> None:
        """Crash validator `i` (and its ingress) and wait until Ray reports it dead (so a restart
        cannot overlap)."""
        handle = self.handles[i]
        assert handle is not None
        ray.kill(handle, no_restart=True)
        if self.ingresses[i] is not None and self.ingresses[i] is not handle:
            ray.kill(self.ingresses[i], no_restart=True)
        self.ingresses[i] = None
        self.handles[i] = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                ray.get(handle.status.remote(), timeout=5)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                return
            time.sleep(0.1)
        raise TimeoutError(f"validator {i} still answers after ray.kill")

    def call(
        self, method: str, *args: Any, indices: Sequence[int] | None = None, timeout_s: float = 60.0
    ) -> list[Any]:
        """`method(*args)` on each given (default: live) validator, in index order."""
        todo = self.live if indices is None else indices
        refs = [getattr(self.handles[i], method).remote(*args) for i in todo]
        return ray.get(refs, timeout=timeout_s)

    def operator_call(
        self, method: str, *args: Any, indices: Sequence[int] | None = None, timeout_s: float = 60.0
    ) -> list[Any]:
        """`method(operator capability, *args)` on each given (default: live) validator."""
        todo = self.live if indices is None else indices
        refs = [getattr(self.handles[i], method).remote(self.caps[i].operator, *args) for i in todo]
        return ray.get(refs, timeout=timeout_s)

    def heights(self) -> list[int]:
        return [s.height for s in self.call("status")]

    def wait_for_height(
        self, height: int, timeout_s: float = 60.0, indices: Sequence[int] | None = None
    ) -> list[NodeStatus]:
        return self.operator_call(
            "wait_for_height", height, timeout_s, indices=indices, timeout_s=timeout_s + 30
        )

    def stop(self) -> None:
        """Close every live validator's stores, then end the actors."""
        actors = [h for h in self.handles if h is not None]
        actors += [g for g in self.ingresses if g is not None and g not in self.handles]
        try:
            self.operator_call("shutdown", timeout_s=30)
        finally:
            for h in actors:
                ray.kill(h, no_restart=True)
            self.handles = [None] * len(self.dirs)
            self.ingresses = [None] * len(self.dirs)
