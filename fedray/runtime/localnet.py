"""A set of validator actors on the current Ray cluster, driven from the caller's process: create
their directories, start, kill (as a crash: `ray.kill`), restart from the directory, and query all
of them. Integration tests and `fedray bench consensus` use it; `fedray run` has its own driver.

Deliberately ignored: placement (actors go wherever Ray puts them) and ingress actors.
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
from fedray.runtime.validator import ValidatorActor, prepare_node_dir


class ValidatorNet:
    def __init__(
        self,
        root: str | Path,
        genesis: Genesis,
        keys: Sequence[PrivateKey],
        actor_options: dict[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        self.raw_genesis = encode(genesis.to_canonical())
        self.dirs = [prepare_node_dir(Path(root) / f"validator-{i}", k) for i, k in enumerate(keys)]
        self.settings = settings
        self.actor_options = {"num_cpus": 0, **(actor_options or {})}
        self.handles: list[Any | None] = [None] * len(self.dirs)

    @property
    def live(self) -> list[int]:
        return [i for i, h in enumerate(self.handles) if h is not None]

    def start(self, indices: Sequence[int] | None = None) -> None:
        """Create (or re-create from their directories) the given validators and (re)connect all."""
        todo = range(len(self.dirs)) if indices is None else indices
        for i in todo:
            if self.handles[i] is None:
                self.handles[i] = ValidatorActor.options(**self.actor_options).remote(
                    str(self.dirs[i]), self.raw_genesis, **self.settings
                )
        live = [h for h in self.handles if h is not None]
        ray.get([h.connect.remote(live) for h in live])
        ray.get([self.handles[i].start.remote() for i in todo])  # type: ignore[union-attr]

    def kill(self, i: int, timeout_s: float = 30.0) -> None:
        """Crash validator `i` and wait until Ray reports it dead (so a restart cannot overlap)."""
        handle = self.handles[i]
        assert handle is not None
        ray.kill(handle, no_restart=True)
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

    def heights(self) -> list[int]:
        return [s["height"] for s in self.call("status")]

    def wait_for_height(
        self, height: int, timeout_s: float = 60.0, indices: Sequence[int] | None = None
    ) -> list[dict[str, Any]]:
        return self.call(
            "wait_for_height", height, timeout_s, indices=indices, timeout_s=timeout_s + 30
        )

    def stop(self) -> None:
        """Close every live validator's stores, then end the actors."""
        live = [h for h in self.handles if h is not None]
        try:
            ray.get([h.shutdown.remote() for h in live], timeout=30)
        finally:
            for h in live:
                ray.kill(h, no_restart=True)
            self.handles = [None] * len(self.dirs)
