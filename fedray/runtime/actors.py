"""The actors of one run: validators (spread over nodes by a placement group, each hosting its
ingress, or with an ingress actor in the same bundle: `runtime.ingress`), client pools, and how the
driver calls them. A driver that runs inside a placement group (a Ray Tune trial's) puts every actor
in that group instead, each in its own bundle (`placement.RunLayout`).

`RunActors.start` builds them all and waits until each answers, so an actor that fails to build
fails the start (and `launch` then stops Ray and removes the empty run directory). A resumed run
reopens the same validator directories (keys, block store, signer state). `call` asks the first
validator `ValidatorHealth` allows; `new_pool` rebuilds a pool with the same clients (and marks it
fresh, so the driver hands it its saved attack state). Consensus starts only on `start_consensus`.

Handles and capabilities (docs/security.md): the driver alone holds validator handles and each
validator's operator capability (derived from the validator's key, `access.Capabilities`); an
ingress actor gets its validator's handle and ingress capability (a hosted ingress calls its
validator directly); each pool gets ingress handles only (the validators' own when they host their
ingresses: every method a pool can reach there checks a capability or a signature) and a random
capability of its own, which the driver presents to make it train, skip or vote. Its
clients' training samples are all it is handed of the data: the driver cuts them from the split
it loaded (`Federation.pool_shards`), so pools load no data set (`data=synthetic_users` aside:
each pool generates its own users).

Ignores: what to do next (the policy's), rounds and records (`run`).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from pathlib import Path
from typing import Any

from fedray.config import RunConfig, custom_strategies
from fedray.core.encoding import encode
from fedray.core.state import Genesis
from fedray.federation.driver import KillPool, KillValidator, RunError, ValidatorHealth
from fedray.federation.keys import RunKeys, load_run_keys, make_run_keys, write_run_keys
from fedray.federation.plan import Federation, ingress_cpus
from fedray.runtime.access import Capabilities
from fedray.runtime.placement import RunLayout, check_bundles


class RunActors:
    def __init__(self, cfg: RunConfig, fed: Federation, run_dir: Path) -> None:
        self.cfg, self.fed, self.run_dir = cfg, fed, run_dir
        self.health = ValidatorHealth(cfg.chain.validators)
        self.pool_clients = fed.pools()
        self.validators: list[Any] = []
        self.ingresses: list[Any] = []
        self.pools: list[Any] = []
        self.fresh_pools: set[int] = set()  # rebuilt pools, to be handed their saved state
        self.pool_caps = [secrets.token_bytes(32) for _ in self.pool_clients]
        self.pool_data: dict[int, Any] = {}  # object refs of what each pool is handed, put once
        self.caps: list[Capabilities] = []
        self.run_keys: RunKeys | None = None
        self.pg: Any = None
        self.own_pg = False  # made here (removed on stop), or given (a Tune trial's)
        self.layout = RunLayout.of(fed)

    def node_dir(self, i: int) -> Path:
        return self.run_dir / "chain" / f"validator-{i}"

    def keys(self, resume: bool) -> RunKeys:
        """The run's keys (`runtime.keys`): made and written for a new run, read back for a
        resumed one. Also derives each validator's capabilities."""
        dirs = [self.node_dir(i) for i in range(self.cfg.chain.validators)]
        if resume:
            keys = load_run_keys(self.fed, self.run_dir, dirs)
        else:
            keys = make_run_keys(self.fed, len(dirs), self.cfg.runtime.keys)
            write_run_keys(self.run_dir, dirs, keys)
        self.run_keys = keys
        self.caps = [Capabilities.of(k) for k in keys.validators]
        return keys

    def start(self, genesis: Genesis, initial: dict[str, Any]) -> None:
        import ray

        from fedray.runtime.ingress import IngressActor
        from fedray.runtime.validator import ValidatorActor

        rt, n = self.cfg.runtime, self.cfg.chain.validators
        genesis_bytes = encode(genesis.to_canonical())
        layout = {k: (a.dtype.str, tuple(a.shape)) for k, a in initial.items()}
        hosted = rt.ingress == "validator"  # else an ingress actor per validator
        self._place()
        for i in range(n):
            kwargs = self._validator_kwargs(i, genesis_bytes)
            if hosted:
                kwargs["ingress_layout"] = layout
            self.validators.append(
                ValidatorActor.options(
                    num_cpus=rt.validator_num_cpus, scheduling_strategy=self._validator_bundle(i)
                ).remote(**kwargs)
            )
        ray.get([v.put_blob.remote(c.operator, initial) for v, c in self._with_caps()])
        for i, v in enumerate(self.validators):
            if hosted:  # pools call `submit` on the validator itself
                self.ingresses.append(v)
                continue
            strategy = self._validator_bundle(i)
            self.ingresses.append(
                IngressActor.options(
                    num_cpus=ingress_cpus(rt), scheduling_strategy=strategy
                ).remote(
                    str(self.node_dir(i)),
                    genesis.chain_id,
                    genesis.params.max_tx_bytes,
                    layout,
                    v,
                    self.caps[i].ingress,
                )
            )
        self.pools = [self.new_pool(idx) for idx in range(len(self.pool_clients))]
        # Everyone answers (an actor that fails to build raises here) before consensus starts.
        ray.get(
            [p.public_keys.remote() for p in self.pools]
            + [g.stats.remote() for g in self.ingresses]
        )
        ray.get([v.connect.remote(c.operator, self.validators) for v, c in self._with_caps()])

    def _place(self) -> None:
        """The placement group the actors go in: the one this driver runs in (a Ray Tune trial's,
        which Ray would put every actor in anyway; `placement` lays the run out in it), else a
        SPREAD group of our own for the validators (pools go where Ray's scheduler puts them)."""
        import ray
        from ray.util.placement_group import get_current_placement_group, placement_group

        given = get_current_placement_group()
        if given is not None:
            check_bundles(self.layout, given.bundle_specs)
            self.pg, self.own_pg = given, False
            return
        rt = self.cfg.runtime
        self.pg = placement_group(
            [{"CPU": rt.validator_num_cpus + ingress_cpus(rt)}] * self.cfg.chain.validators,
            strategy="SPREAD",
        )
        self.own_pg = True
        ray.get(self.pg.ready(), timeout=120)

    def _validator_bundle(self, i: int) -> Any:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        index = i if self.own_pg else self.layout.validator_bundle(i)
        return PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=index)

    def start_consensus(self) -> None:
        import ray

        ray.get([v.start.remote(c.operator) for v, c in self._with_caps()])

    def _ingress_actors(self) -> list[Any]:
        """The ingresses that are actors of their own (none when validators host them)."""
        return [g for g, v in zip(self.ingresses, self.validators, strict=True) if g is not v]

    def _with_caps(self) -> list[tuple[Any, Capabilities]]:
        return list(zip(self.validators, self.caps, strict=True))

    def _validator_kwargs(self, i: int, genesis: bytes) -> dict[str, Any]:
        c = self.cfg.chain
        return {
            "node_dir": str(self.node_dir(i)),
            "genesis": genesis,
            "passphrase": self._keys().passphrase,
            "timeout_propose_s": c.timeout_propose_s,
            "timeout_vote_s": c.timeout_vote_s,
            "timeout_delta_s": c.timeout_delta_s,
            "timeout_commit_s": c.timeout_commit_s,
            "block_interval_s": c.block_interval_s,
            "round_gather_s": c.round_gather_s,
            "aggregation_threads": self.cfg.runtime.aggregation_threads,
            "strategies": custom_strategies(self.cfg),  # a custom rule, registered by name
            "python_path": tuple(self.cfg.python_path),
            "metrics_index": i if self.cfg.metrics.ray else -1,
            "metrics_run": self.run_dir.name,
        }

    def new_pool(self, idx: int) -> Any:
        """A pool actor for the clients of pool `idx` (the configured faults go to pool 0)."""
        from fedray.runtime.pool import PoolActor, PoolFaults

        f = self.cfg.faults
        faults = (
            PoolFaults(
                f.corrupt_payload_round, f.slow_pool_s, f.pool_error_round, f.fail_pool_start
            )
            if idx == 0
            else None
        )
        self.fresh_pools.add(idx)
        clients = self.pool_clients[idx]
        rt = self.cfg.runtime
        options: dict[str, Any] = {"num_cpus": rt.pool_num_cpus, "num_gpus": rt.pool_num_gpus}
        if self.pg is not None and not self.own_pg:  # its own bundle of the given group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                self.pg, placement_group_bundle_index=self.layout.pool_bundle(idx)
            )
        return PoolActor.options(**options).remote(
            self.cfg,
            clients,
            self.pool_caps[idx],
            faults,
            self._keys().pool_keys(clients),
            self._pool_data(idx),
        )

    def _pool_data(self, idx: int) -> Any:
        """The object ref of pool `idx`'s clients' samples (`Federation.pool_shards`), put in the
        object store once and reused by a rebuilt pool; None where the pool makes its own."""
        import ray

        if idx not in self.pool_data:
            shards = self.fed.pool_shards(self.pool_clients[idx])
            self.pool_data[idx] = None if shards is None else ray.put(shards)
        return self.pool_data[idx]

    def _keys(self) -> RunKeys:
        if self.run_keys is None:
            raise RunError("the run's keys are made before its actors")
        return self.run_keys

    # --- calling validators ---------------------------------------------------------------------
    def call(
        self,
        method: str,
        *args: Any,
        timeout: float = 60.0,
        only: int | None = None,
        operator: bool = False,
    ) -> Any:
        """Call `method` on the first validator the health policy lets us ask (or on `only`),
        with that validator's operator capability first when `operator`."""
        import ray

        for i in self.health.live(time.time()) if only is None else [only]:
            cap = (self.caps[i].operator,) if operator else ()
            remote = getattr(self.validators[i], method).remote
            try:
                answer = ray.get(remote(*cap, *args), timeout=timeout)
            except ray.exceptions.GetTimeoutError:
                self.health.timed_out(i, time.time())
                continue
            except ray.exceptions.RayActorError:
                self.health.died(i)
                continue
            self.health.answered(i)
            return answer
        raise RunError(f"no live validator answered {method}")

    def most_advanced(self) -> int:
        """The validator at the greatest height (after a kill they may differ)."""
        import ray

        heights = ray.get([v.status.remote() for v in self.validators], timeout=60)
        return max(range(len(heights)), key=lambda i: heights[i].height)

    def live_ingresses(self) -> list[Any]:
        """The ingresses of the validators the policy lets us use now (what pools get)."""
        return [self.ingresses[i] for i in self.health.live(time.time())]

    def submit(self, txs: list[bytes]) -> None:
        """Send transactions without payloads to every live ingress (fire and forget)."""
        batch = [(raw, None, b"") for raw in txs]
        if batch:
            for ingress in self.live_ingresses():
                ingress.submit.remote(batch)

    def kill(self, action: KillPool | KillValidator) -> None:
        import ray

        if isinstance(action, KillPool):
            ray.kill(self.pools[action.index], no_restart=True)
            return
        ray.kill(self.validators[action.index], no_restart=True)
        if self.ingresses[action.index] is not self.validators[action.index]:
            ray.kill(self.ingresses[action.index], no_restart=True)
        self.health.died(action.index)

    def agreement(self) -> int:
        """Compare block hashes of every live validator at every common height; raise on a fork."""
        import ray

        maps = []
        for i in self.health.live(time.time()):
            try:
                maps.append(ray.get(self.validators[i].block_hashes.remote(), timeout=30))
            except ray.exceptions.RayActorError:
                self.health.died(i)  # gone with its node: the summary's dead_validators says so
                continue
            except ray.exceptions.GetTimeoutError:
                continue  # a validator that cannot answer is not compared
        common = min(max(m, default=0) for m in maps) if maps else 0
        for h in range(1, common + 1):
            if len({m[h] for m in maps}) != 1:
                raise RunError(f"validators disagree on block {h}")
        return common

    def stop(self) -> None:
        import ray

        live = [(self.validators[i], self.caps[i]) for i in self.health.live(time.time())]
        with contextlib.suppress(Exception):  # close stores cleanly where possible
            ray.get([v.shutdown.remote(c.operator) for v, c in live], timeout=30)
        for actor in [*self.pools, *self._ingress_actors(), *self.validators]:
            with contextlib.suppress(Exception):  # already dead is fine
                ray.kill(actor, no_restart=True)
        if self.pg is not None and self.own_pg:  # a given group is its owner's to remove
            from ray.util.placement_group import remove_placement_group

            with contextlib.suppress(Exception):
                remove_placement_group(self.pg)
