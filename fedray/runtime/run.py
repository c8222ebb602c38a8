"""`fedray run`: the driver of one chain-governed federated training run.

It connects to Ray (embedded by default), writes the run directory, creates the validators (spread
over nodes by a placement group, each with its ingress in the same bundle), the client pools, and
then only *observes the chain*: when a block opens a round it puts the global model into the object
store once and asks the pools to train; when a block closes a round it evaluates the new global model
on the held-out test set and records the round's figures. The chain decides everything else (who
trains, when a round closes, what the new model is); what the driver does next is the decision of a
pure policy (`fedray.federation.driver.RunPolicy`, and `ValidatorHealth` for which validator to
ask), and this module only carries its actions out on Ray.

Outputs (`runs/<name>-<time>/`): config.yaml, chain/validator-*/ (each validator's block store,
blobs, keys), metrics.parquet, summary.json, model.safetensors, accuracy.png, round_time.png,
balances.png (`fedray.federation.outputs`).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from fedray.config import RunConfig
from fedray.core.encoding import encode
from fedray.federation.driver import (
    DispatchRound,
    FaultPlan,
    GovernanceStep,
    KillPool,
    KillValidator,
    Phase,
    RecordRound,
    RunError,
    RunPolicy,
    Tick,
    ValidatorHealth,
)
from fedray.federation.evaluate import Evaluator
from fedray.federation.governance_script import GovernanceScript
from fedray.federation.metrics import RoundContext, RoundRow, RoundTiming, round_row
from fedray.federation.outputs import (
    RunResult,
    economy_summary,
    make_run_dir,
    summary_text,
    write_outputs,
)
from fedray.federation.plan import Federation
from fedray.node.views import RoundResultView
from fedray.storage.keystore import DEV_PASSPHRASE, KeyStore

__all__ = ["Run", "RunError", "RunResult", "make_run_dir", "run", "summary_text"]


class Run:
    """One run's actors and bookkeeping; `execute()` drives it to the end."""

    def __init__(self, cfg: RunConfig, run_dir: Path) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.fed = Federation(cfg)
        self.rows: list[RoundRow] = []
        self.timings: dict[int, RoundTiming] = {}
        self.pool_futures: dict[int, list[tuple[int, Any]]] = {}
        self.aggregation_before = 0.0
        self.validators: list[Any] = []
        self.ingresses: list[Any] = []
        self.pools: list[Any] = []
        self.pool_clients = self.fed.pools()
        n = cfg.chain.validators
        self.health = ValidatorHealth(n)
        self.policy = RunPolicy(
            rounds=cfg.rounds,
            stall_limit_s=max(120.0, 10 * cfg.chain.round_deadline_blocks),
            governance=bool(cfg.governance),
            faults=FaultPlan(cfg.faults.kill_pool_round, cfg.faults.kill_validator_round, n),
        )

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
            "timeout_commit_s": c.timeout_commit_s,
            "block_interval_s": c.block_interval_s,
            "aggregation_threads": self.cfg.runtime.aggregation_threads,
        }

    def _new_pool(self, idx: int) -> Any:
        from fedray.runtime.pool import PoolActor

        corrupt = self.cfg.faults.corrupt_payload_round if idx == 0 else -1
        return PoolActor.options(num_cpus=self.cfg.runtime.pool_num_cpus).remote(
            self.cfg, self.pool_clients[idx], corrupt
        )

    # --- calling validators ---------------------------------------------------------------------
    def _call(self, method: str, *args: Any, timeout: float = 60.0) -> Any:
        """Call `method` on the first validator the health policy lets us ask."""
        import ray

        for i in self.health.live(time.time()):
            try:
                answer = ray.get(getattr(self.validators[i], method).remote(*args), timeout=timeout)
            except ray.exceptions.GetTimeoutError:
                self.health.timed_out(i, time.time())
                continue
            except ray.exceptions.RayActorError:
                self.health.died(i)
                continue
            self.health.answered(i)
            return answer
        raise RunError(f"no live validator answered {method}")

    def _live(self) -> tuple[list[Any], list[Any]]:
        """(validators, their ingresses) the policy lets us use now."""
        live = self.health.live(time.time())
        return [self.validators[i] for i in live], [self.ingresses[i] for i in live]

    def _submit(self, txs: list[bytes]) -> None:
        """Send transactions without payloads to every live ingress (fire and forget)."""
        batch = [(raw, None, b"") for raw in txs]
        if batch:
            for ingress in self._live()[1]:
                ingress.submit.remote(batch)

    # --- carrying out the policy's actions -----------------------------------------------------
    def _dispatch(self, action: DispatchRound) -> None:
        import ray

        timing = self.timings.setdefault(action.round, RoundTiming(time.time()))
        ref = ray.put(self._call("get_blob", action.global_hash))  # pools get it by reference
        timing.dispatched_wall = time.time()
        validators, ingresses = self._live()
        for idx, pool in enumerate(self.pools):
            future = pool.train_round.remote(action.round, ref, validators, ingresses)
            self.pool_futures.setdefault(action.round, []).append((idx, future))

    def _kill(self, action: KillPool | KillValidator) -> None:
        import ray

        if isinstance(action, KillPool):
            ray.kill(self.pools[action.index], no_restart=True)
            return
        ray.kill(self.validators[action.index], no_restart=True)
        ray.kill(self.ingresses[action.index], no_restart=True)
        self.health.died(action.index)

    def _governance(self, action: GovernanceStep) -> None:
        """Submit the proposals due at an opening round; vote on ours once they are open."""
        v0 = self.validator_keys[0].public_key
        if action.opened_round is not None:
            nonce = self._call("account_nonces", [v0])[v0]
            deposit = self.genesis.params.gov_min_deposit
            self._submit(self.script.due(action.opened_round, deposit, action.global_hash, nonce))
        self.script.match(self._call("governance_info").proposals)
        due = self.script.votes_due()
        if not due:
            return
        keys = [k.public_key for k in self.validator_keys]
        self._submit(self.script.validator_votes(due, self._call("account_nonces", keys)))
        validators, ingresses = self._live()
        for pend in due:
            if pend.action.client_votes != "none":
                for pool in self.pools:
                    pool.vote.remote(
                        pend.proposal_id, pend.action.client_votes, validators, ingresses
                    )

    def _collect_pools(self, round_: int) -> None:
        """Fold finished pool answers into the round's timing; restart pools that died."""
        import ray

        timing = self.timings.get(round_)
        pending = []
        for idx, fut in self.pool_futures.get(round_, []):
            ready, _ = ray.wait([fut], timeout=0)
            if not ready:
                pending.append((idx, fut))
                continue
            try:
                out = ray.get(fut)
            except ray.exceptions.RayActorError:
                self.pools[idx] = self._new_pool(idx)  # the chain moves on without its updates
                continue
            if timing is not None:
                timing.pool_report(
                    out.get("train_s", 0.0),
                    out.get("sent_at", 0.0),
                    out.get("payload_bytes", 0),
                    len(out.get("ingress", [])),
                )
        self.pool_futures[round_] = pending

    def _record(self, result: RoundResultView, evaluator: Evaluator, start_wall: float) -> RoundRow:
        self._collect_pools(result.round)
        self.pool_futures.pop(result.round, None)
        timing = self.timings.pop(result.round, RoundTiming(time.time()))
        aggregation_now = float(self._call("status").get("aggregation_s", 0.0))
        # seconds a validator spent aggregating since the last round (another validator may
        # answer after a crash, so never negative)
        aggregation_s = max(0.0, aggregation_now - self.aggregation_before)
        self.aggregation_before = aggregation_now
        closed_wall = time.time()
        context = RoundContext(
            closed_wall=closed_wall,
            start_wall=start_wall,
            height=self.policy.height,
            previous_txs=self.rows[-1].cumulative_txs if self.rows else 0,
            model_bytes=sum(a.nbytes for a in self.initial.values()),
            pools=len(self.pools),
        )
        return round_row(
            result,
            timing,
            evaluator.evaluate(self._call("get_blob", result.global_after)),
            aggregation_s,
            context,
            self.client_keys,
            self._call("accounts_info", self.client_keys),
            self._call("economy_info"),
        )

    def execute(self) -> RunResult:
        evaluator = Evaluator(self.fed)
        progress = _progress(self.cfg)
        start_wall = time.time()
        while self.policy.phase is not Phase.FINISHED:
            self._call("wait_for_height", self.policy.height + 1, 2.0, timeout=30.0)
            info = self._call("round_info", self.policy.last_result)
            tick = Tick(time.time(), info, self.script.finished())
            for open_round in list(self.pool_futures):
                self._collect_pools(open_round)
            for action in self.policy.observe(tick):
                if isinstance(action, RecordRound):
                    row = self._record(action.result, evaluator, start_wall)
                    self.rows.append(row)
                    progress.update(1)
                    tx_s = row.cumulative_txs / max(1e-9, time.time() - start_wall)
                    progress.set_postfix(
                        acc=f"{row.accuracy:.3f}", height=self.policy.height, tx_s=f"{tx_s:.1f}"
                    )
                elif isinstance(action, DispatchRound):
                    self._dispatch(action)
                elif isinstance(action, KillPool | KillValidator):
                    self._kill(action)
                else:
                    self._governance(action)
        progress.close()
        return self._finish(evaluator, start_wall)

    def _finish(self, evaluator: Evaluator, start_wall: float) -> RunResult:
        elapsed = time.time() - start_wall
        info = self._call("round_info", self.cfg.rounds)
        final_model = self._call("get_blob", info.global_hash)
        rows = [row.as_dict() for row in self.rows]
        summary = {
            "name": self.cfg.name,
            "run_dir": str(self.run_dir),
            "rounds": len(rows),
            "final_accuracy": rows[-1]["accuracy"],
            "initial_accuracy": evaluator.evaluate(self.initial).accuracy,
            "elapsed_seconds": elapsed,
            "height": info.height,
            "validators_agree_up_to": self._agreement(),
            "dead_validators": sorted(self.health.dead),
            "attackers": list(self.fed.attackers()),
            "global_model_hash": info.global_hash.hex(),
            "governance": self.script.summary(),
            "economy": economy_summary(self._call("economy_info"), self.genesis),
        }
        if self.cfg.baseline:
            summary["baseline_accuracy"] = evaluator.baseline(self.cfg)
        write_outputs(self.run_dir, rows, summary, final_model, self.fed)
        return RunResult(self.run_dir, rows, summary)

    def _agreement(self) -> int:
        """Compare block hashes of every live validator at every common height; raise on a fork."""
        import ray

        maps = []
        for i in self.health.live(time.time()):
            try:
                maps.append(ray.get(self.validators[i].block_hashes.remote(), timeout=30))
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                continue  # a validator that cannot answer is not compared
        common = min(max(m) for m in maps) if maps else 0
        for h in range(1, common + 1):
            if len({m[h] for m in maps}) != 1:
                raise RunError(f"validators disagree on block {h}")
        return common

    def stop(self) -> None:
        import ray

        live = [self.validators[i] for i in self.health.live(time.time())]
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
