"""`fedray run`: the driver of one chain-governed federated training run.

It connects to Ray (embedded by default), writes the run directory, creates the validators (spread
over nodes by a placement group, each with its ingress in the same bundle), the client pools, and
then only *observes the chain*: when a block opens a round it puts the global model into the object
store once and asks the pools to train; when a block closes a round it evaluates the new global model
on the held-out test set and records the round's figures. The chain decides everything else (who
trains, when a round closes, what the new model is).

Outputs (`runs/<name>-<time>/`): config.yaml, chain/validator-*/ (each validator's block store,
blobs, keys), metrics.parquet, summary.json, model.safetensors, accuracy.png, round_time.png.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fedray.config import RunConfig, to_yaml
from fedray.core.encoding import encode
from fedray.errors import FedrayError
from fedray.runtime.federation import Federation
from fedray.runtime.governance_script import GovernanceScript
from fedray.storage.keystore import DEV_PASSPHRASE, KeyStore


class RunError(FedrayError):
    """The run could not make progress (no live validator, chain stalled past its limit)."""

    code = "run"


@dataclass
class RoundTiming:
    opened_wall: float
    dispatched_wall: float = 0.0
    train_s: float = 0.0
    sent_wall: float = 0.0
    payload_bytes: int = 0
    pool_futures: list[Any] = field(default_factory=list)


@dataclass
class RunResult:
    run_dir: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any]


def make_run_dir(cfg: RunConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.output_dir) / f"{cfg.name}-{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        run_dir, n = Path(f"{base}-{n}"), n + 1
    (run_dir / "chain").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    return run_dir


class Run:
    """One run's actors and bookkeeping; `execute()` drives it to the end."""

    def __init__(self, cfg: RunConfig, run_dir: Path) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.fed = Federation(cfg)
        self.rows: list[dict[str, Any]] = []
        self.timings: dict[int, RoundTiming] = {}
        self.validators: list[Any] = []
        self.ingresses: list[Any] = []
        self.pools: list[Any] = []
        self.pool_clients = self.fed.pools()
        self.dead_validators: set[int] = set()

    # --- setup --------------------------------------------------------------------------------
    def node_dir(self, i: int) -> Path:
        return self.run_dir / "chain" / f"validator-{i}"

    def start(self) -> None:
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from fedray.runtime.ingress import IngressActor
        from fedray.runtime.validator import ValidatorActor

        cfg, rt = self.cfg, self.cfg.runtime
        n = cfg.chain.validators
        keys = [
            KeyStore(self.node_dir(i) / "keys", DEV_PASSPHRASE).create("validator")
            for i in range(n)
        ]
        self.validator_keys = keys
        self.initial = self.fed.initial_model()
        self.genesis = self.fed.genesis([k.public_key for k in keys], self.initial)
        self.script = GovernanceScript(self.fed, keys, self.genesis.chain_id)
        self.client_keys = [self.fed.client_key(i).public_key for i in range(cfg.clients)]
        genesis_bytes = encode(self.genesis.to_canonical())
        ingress_cpus = 0.05
        self.pg = placement_group(
            [{"CPU": rt.validator_num_cpus + ingress_cpus}] * n, strategy="SPREAD"
        )
        ray.get(self.pg.ready(), timeout=120)
        self._validator_args = (genesis_bytes,)
        for i in range(n):
            strategy = PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=i)
            v = ValidatorActor.options(
                num_cpus=rt.validator_num_cpus, scheduling_strategy=strategy, name=None
            ).remote(**self._validator_kwargs(i))
            self.validators.append(v)
        ray.get([v.put_blob.remote(self.initial) for v in self.validators])
        layout = {k: (a.dtype.str, tuple(a.shape)) for k, a in self.initial.items()}
        for i, v in enumerate(self.validators):
            strategy = PlacementGroupSchedulingStrategy(self.pg, placement_group_bundle_index=i)
            self.ingresses.append(
                IngressActor.options(num_cpus=ingress_cpus, scheduling_strategy=strategy).remote(
                    str(self.node_dir(i)),
                    self.genesis.chain_id,
                    self.genesis.params.max_tx_bytes,
                    layout,
                    v,
                )
            )
        for idx in range(len(self.pool_clients)):
            self.pools.append(self._new_pool(idx))
        # Everyone is ready before the first block opens round 0.
        ray.get(
            [p.public_keys.remote() for p in self.pools]
            + [g.stats.remote() for g in self.ingresses]
        )
        ray.get([v.connect.remote(self.validators) for v in self.validators])
        ray.get([v.start.remote() for v in self.validators])

    def _validator_kwargs(self, i: int) -> dict[str, Any]:
        c = self.cfg.chain
        return {
            "node_dir": str(self.node_dir(i)),
            "genesis": self._validator_args[0],
            "passphrase": DEV_PASSPHRASE,
            "timeout_propose_s": c.timeout_propose_s,
            "timeout_vote_s": c.timeout_vote_s,
            "timeout_delta_s": c.timeout_delta_s,
            "block_interval_s": c.block_interval_s,
            "aggregation_threads": self.cfg.runtime.aggregation_threads,
        }

    def _new_pool(self, idx: int) -> Any:
        from fedray.runtime.pool import PoolActor

        corrupt = self.cfg.faults.corrupt_payload_round if idx == 0 else -1
        return PoolActor.options(num_cpus=self.cfg.runtime.pool_num_cpus).remote(
            self.cfg, self.pool_clients[idx], corrupt
        )

    # --- observing the chain ------------------------------------------------------------------
    def _call(self, method: str, *args: Any, timeout: float = 60.0) -> Any:
        """Call `method` on the first live validator."""
        import ray

        for i, v in enumerate(self.validators):
            if i in self.dead_validators:
                continue
            try:
                return ray.get(getattr(v, method).remote(*args), timeout=timeout)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                self.dead_validators.add(i)
        raise RunError(f"no live validator answered {method}")

    def _dispatch(self, info: dict[str, Any]) -> None:
        import ray

        r = info["round"]
        timing = self.timings.setdefault(r, RoundTiming(time.time()))
        model = self._call("get_blob", info["global_hash"])
        ref = ray.put(model)  # once per round; pools get it by reference
        timing.dispatched_wall = time.time()
        live_ingress = [g for i, g in enumerate(self.ingresses) if i not in self.dead_validators]
        live_validators = [
            v for i, v in enumerate(self.validators) if i not in self.dead_validators
        ]
        for idx, pool in enumerate(self.pools):
            timing.pool_futures.append(
                (idx, pool.train_round.remote(r, ref, live_validators, live_ingress))
            )

    def _submit(self, txs: list[bytes]) -> None:
        """Send transactions without payloads to every live ingress (fire and forget)."""
        batch = [(raw, None, b"") for raw in txs]
        for i, ingress in enumerate(self.ingresses):
            if i not in self.dead_validators and batch:
                ingress.submit.remote(batch)

    def _governance(self, round_opened: int | None, global_hash: bytes) -> None:
        """Submit the proposals due at an opening round; vote on ours once they are open."""
        if not self.cfg.governance:
            return
        v0 = self.validator_keys[0].public_key
        if round_opened is not None:
            nonce = self._call("account_nonces", [v0])[v0]
            deposit = self.genesis.params.gov_min_deposit
            self._submit(self.script.due(round_opened, deposit, global_hash, nonce))
        self.script.match(self._call("governance_info")["proposals"])
        due = self.script.votes_due()
        if not due:
            return
        keys = [k.public_key for k in self.validator_keys]
        self._submit(self.script.validator_votes(due, self._call("account_nonces", keys)))
        live = [v for i, v in enumerate(self.validators) if i not in self.dead_validators]
        ingresses = [g for i, g in enumerate(self.ingresses) if i not in self.dead_validators]
        for pend in due:
            if pend.action.client_votes != "none":
                for pool in self.pools:
                    pool.vote.remote(pend.proposal_id, pend.action.client_votes, live, ingresses)

    def _collect_pools(self, round_: int) -> None:
        """Fold finished pool answers into the round's timing; restart pools that died."""
        import ray

        timing = self.timings.get(round_)
        if timing is None:
            return
        pending = []
        for idx, fut in timing.pool_futures:
            ready, _ = ray.wait([fut], timeout=0)
            if not ready:
                pending.append((idx, fut))
                continue
            try:
                out = ray.get(fut)
            except ray.exceptions.RayActorError:
                self.pools[idx] = self._new_pool(idx)  # the chain moves on without its updates
                continue
            timing.train_s = max(timing.train_s, out.get("train_s", 0.0))
            timing.sent_wall = max(timing.sent_wall, out.get("sent_at", 0.0))
            timing.payload_bytes += out.get("payload_bytes", 0) * max(
                1, len(out.get("ingress", []))
            )
        timing.pool_futures = pending

    def _inject_faults(self, round_: int) -> None:
        import ray

        f = self.cfg.faults
        if round_ == f.kill_pool_round and self.pools:
            ray.kill(self.pools[0], no_restart=True)
        if round_ == f.kill_validator_round and len(self.validators) > 1:
            last = len(self.validators) - 1
            ray.kill(self.validators[last], no_restart=True)
            ray.kill(self.ingresses[last], no_restart=True)
            self.dead_validators.add(last)

    def execute(self) -> RunResult:
        from fedray.runtime.evaluate import Evaluator

        evaluator = Evaluator(self.fed)
        progress = _progress(self.cfg)
        start_wall = time.time()
        height, last_result = 0, -1
        dispatched: set[int] = set()
        agg_before = 0.0
        stall_limit = max(120.0, 10 * self.cfg.chain.round_deadline_blocks)
        last_progress = time.time()
        governance_deadline: float | None = None
        while len(self.rows) < self.cfg.rounds or not self._governance_done(governance_deadline):
            if len(self.rows) >= self.cfg.rounds and governance_deadline is None:
                governance_deadline = time.time() + 120.0  # scheduled proposals may still be voting
            self._call("wait_for_height", height + 1, 2.0, timeout=30.0)  # next block, or 2 s
            status = self._call("round_info", last_result)
            if status["height"] > height:
                height = status["height"]
                last_progress = time.time()
            elif time.time() - last_progress > stall_limit:
                raise RunError(
                    f"the chain made no progress for {stall_limit:.0f} s at height {height}"
                )
            for open_round in list(self.timings):
                self._collect_pools(open_round)
            for result in status["results"]:
                r = result["round"]
                last_result = max(last_result, r)
                agg_now = float(self._call("status").get("aggregation_s", 0.0))
                # seconds this validator spent aggregating since the last round (another validator
                # may answer after a crash, so never negative)
                aggregation_s = max(0.0, agg_now - agg_before)
                row = self._round_row(result, evaluator, aggregation_s, start_wall, height)
                agg_before = agg_now
                self.rows.append(row)
                progress.update(1)
                progress.set_postfix(
                    acc=f"{row['accuracy']:.3f}",
                    height=height,
                    tx_s=f"{row['cumulative_txs'] / max(1e-9, time.time() - start_wall):.1f}",
                )
            opened = None
            if status["open"] and status["round"] not in dispatched:
                dispatched.add(status["round"])
                opened = status["round"]
                self._inject_faults(opened)
                self._dispatch(status)
            self._governance(opened, status["global_hash"])
        progress.close()
        return self._finish(evaluator, start_wall)

    def _governance_done(self, deadline: float | None) -> bool:
        if not self.cfg.governance or self.script.finished():
            return True
        if deadline is not None and time.time() > deadline:
            raise RunError("scheduled governance proposals did not finish within 120 s")
        return False

    def _round_row(
        self,
        result: dict[str, Any],
        evaluator: Any,
        aggregation_s: float,
        start_wall: float,
        height: int,
    ) -> dict[str, Any]:
        r = result["round"]
        self._collect_pools(r)
        timing = self.timings.pop(r, RoundTiming(time.time()))
        closed_wall = time.time()
        metrics = evaluator.evaluate(self._call("get_blob", result["global_after"]))
        round_s = closed_wall - timing.opened_wall
        consensus_s = (
            max(0.0, closed_wall - timing.sent_wall - aggregation_s) if timing.sent_wall else 0.0
        )
        waiting_s = max(0.0, round_s - timing.train_s - consensus_s - aggregation_s)
        previous = self.rows[-1]["cumulative_txs"] if self.rows else 0
        model_bytes = sum(a.nbytes for a in self.initial.values())
        accounts = self._call("accounts_info", self.client_keys)
        economy = self._call("economy_info")
        return {
            "round": r,
            "accuracy": metrics.accuracy,
            "loss": metrics.loss,
            "round_seconds": round_s,
            "train_seconds": timing.train_s,
            "consensus_seconds": consensus_s,
            "aggregation_seconds": aggregation_s,
            "waiting_seconds": waiting_s,
            "tx_count": result["included"],
            "cumulative_txs": previous + result["included"],
            "bytes_moved": timing.payload_bytes + model_bytes * len(self.pools),
            "selected": result["selected"],
            "included": result["included"],
            "accepted": result["accepted"],
            "clipped": result["clipped"],
            "close_reason": result["reason"],
            "opened_at": result["opened_at"],
            "closed_at": result["closed_at"],
            "height": height,
            "wall_seconds": closed_wall - start_wall,
            # per client, in client index order
            "client_balances": [accounts[k]["balance"] for k in self.client_keys],
            "client_stakes": [accounts[k]["stake"] for k in self.client_keys],
            "client_jailed": [
                bool(accounts[k]["jailed_until"]) or accounts[k]["banned"] for k in self.client_keys
            ],
            "minted_total": economy["minted"],
            "burned_total": economy["burned"],
            "penalties_total": len(economy["penalties"]),
            "slashed_clients": sorted(
                {
                    self.client_keys.index(p["offender"])
                    for p in economy["penalties"]
                    if p["offender"] in self.client_keys
                }
            ),
        }

    def _finish(self, evaluator: Any, start_wall: float) -> RunResult:
        from fedray.runtime.outputs import write_outputs

        elapsed = time.time() - start_wall
        info = self._call("round_info", self.cfg.rounds)
        final_model = self._call("get_blob", info["global_hash"])
        hashes = self._agreement()
        summary = {
            "name": self.cfg.name,
            "run_dir": str(self.run_dir),
            "rounds": len(self.rows),
            "final_accuracy": self.rows[-1]["accuracy"],
            "initial_accuracy": evaluator.evaluate(self.initial).accuracy,
            "elapsed_seconds": elapsed,
            "height": info["height"],
            "validators_agree_up_to": hashes,
            "dead_validators": sorted(self.dead_validators),
            "attackers": list(self.fed.attackers()),
            "global_model_hash": info["global_hash"].hex(),
            "governance": self.script.summary(),
            "economy": self._economy_summary(),
        }
        if self.cfg.baseline:
            summary["baseline_accuracy"] = evaluator.baseline(self.cfg)
        write_outputs(self.run_dir, self.rows, summary, final_model, self.fed)
        return RunResult(self.run_dir, self.rows, summary)

    def _economy_summary(self) -> dict[str, Any]:
        from fedray.core.contracts.economy import account_total

        economy = self._call("economy_info")
        kinds: dict[str, int] = {}
        for p in economy["penalties"]:
            kinds[p["kind"]] = kinds.get(p["kind"], 0) + 1
        return {
            "minted": economy["minted"],
            "burned": economy["burned"],
            "penalties": kinds,
            "genesis_supply": account_total(self.genesis.state().accounts.accounts.values()),
        }

    def _agreement(self) -> int:
        """Compare block hashes of every live validator at every common height; raise on a fork."""
        import ray

        maps = []
        for i, v in enumerate(self.validators):
            if i in self.dead_validators:
                continue
            try:
                maps.append(ray.get(v.block_hashes.remote(), timeout=30))
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                self.dead_validators.add(i)
        common = min(max(m) for m in maps) if maps else 0
        for h in range(1, common + 1):
            if len({m[h] for m in maps}) != 1:
                raise RunError(f"validators disagree on block {h}")
        return common

    def stop(self) -> None:
        import ray

        live = [v for i, v in enumerate(self.validators) if i not in self.dead_validators]
        with contextlib.suppress(Exception):  # close stores cleanly where possible
            ray.get([v.shutdown.remote() for v in live], timeout=30)
        for actor in [*self.pools, *self.ingresses, *self.validators]:
            with contextlib.suppress(Exception):  # already dead is fine
                ray.kill(actor, no_restart=True)
        if getattr(self, "pg", None) is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self.pg)


def _progress(cfg: RunConfig) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=cfg.rounds,
        desc=f"fedray {cfg.name}",
        unit="round",
        disable=not cfg.runtime.progress,
        dynamic_ncols=True,
    )


def run(cfg: RunConfig) -> RunResult:
    """Run `cfg` end to end; always shuts down what it started."""
    from fedray.runtime.cluster import init_ray

    rt = cfg.runtime
    started = init_ray(
        rt.address, rt.num_cpus, rt.object_store_mb, allow_unauthenticated=rt.allow_unauthenticated
    )
    run_dir = make_run_dir(cfg)
    handle = Run(cfg, run_dir)
    try:
        handle.start()
        return handle.execute()
    finally:
        handle.stop()
        if started:
            import ray

            ray.shutdown()


def summary_text(result: RunResult) -> str:
    s = result.summary
    lines = [
        f"run directory   {result.run_dir}",
        f"rounds          {s['rounds']}  (height {s['height']}, {s['elapsed_seconds']:.1f} s)",
        f"test accuracy   {s['initial_accuracy']:.3f} -> {s['final_accuracy']:.3f}",
    ]
    if "baseline_accuracy" in s:
        lines.append(f"centralized     {s['baseline_accuracy']:.3f} (same model and epoch budget)")
    lines.append(f"validators      agree on all {s['validators_agree_up_to']} common blocks")
    lines.append(f"verify with     fedray chain verify {result.run_dir} --recompute")
    return "\n".join(lines)
