"""`fedray run`'s driver on Ray: the actors of one run, and the policy's actions carried out.

`Run.start()` creates the validators (spread over nodes by a placement group, each with its ingress)
and the client pools; a resumed run reopens the validators' directories and restores each pool's
attack state. `execute()` then only *observes the chain*: when a block opens a round it puts the
global model into the object store once and asks the pools to train; when a block closes a round it
evaluates the new model and records the round (`federation.record`) at once. The chain decides the
rest (who trains, when a round closes, the new model); the driver's next step is the pure policy's
(`federation.driver.RunPolicy`, and `ValidatorHealth` for which validator to ask).

The first observation precedes consensus, so a resumed run's open round is trained and its updates
are in every mempool before the first block (it closes with the updates an uninterrupted one would).
A crashed pool is rebuilt and declares its clients' missed updates; a round's errors are printed and
the run goes on; `should_stop` ends it at the next tick. Ray and the run directory are `launch`'s.
Handles (docs/security.md): only the driver holds validator handles and operator capabilities;
pools get ingress handles and a capability of their own; this process unpickles only allowed types.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fedray.config import RunConfig
from fedray.core.state import Genesis
from fedray.federation.client_accounts import ClientAccounts
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
    RunStopped,
    Tick,
)
from fedray.federation.evaluate import Evaluator
from fedray.federation.governance_script import GovernanceScript
from fedray.federation.live import LiveMetrics, progress_bar
from fedray.federation.metrics import (
    RoundContext,
    RoundTiming,
    client_names,
    round_notes,
    round_row,
)
from fedray.federation.outputs import (
    RunResult,
    economy_summary,
    final_summary,
    privacy_summary,
    write_outputs,
)
from fedray.federation.plan import Federation
from fedray.federation.record import RunRecord
from fedray.node.views import RoundInfo, RoundResultView
from fedray.runtime.actors import RunActors
from fedray.runtime.chain_metrics import RunGauges
from fedray.storage.blockstore import BlockStore

__all__ = ["Run", "RunError", "RunResult"]

MAX_POOL_REBUILDS = 3  # a pool that crashes more often stays down (its clients miss their rounds)


class Run:
    """One run's actors and bookkeeping; `execute()` drives it to the end."""

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path,
        resume: bool = False,
        on_round: Callable[[Mapping[str, Any]], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.cfg, self.run_dir, self.resume = cfg, run_dir, resume
        self.on_round, self.should_stop = on_round, should_stop
        self.fed = Federation(cfg)
        self.record = RunRecord(run_dir, self.fed)
        self.timings: dict[int, RoundTiming] = {}
        self.pool_futures: dict[int, list[tuple[int, Any]]] = {}
        self.aggregation_before = 0.0
        self.crashes: dict[int, int] = {}  # pool index -> times rebuilt
        self.actors = RunActors(cfg, self.fed, run_dir)
        self.live = LiveMetrics([])  # opened by start()
        self.finished = False
        n = cfg.chain.validators
        self.policy = RunPolicy(
            rounds=cfg.rounds,
            stall_limit_s=max(120.0, 10 * cfg.chain.round_deadline_blocks),
            governance=bool(cfg.governance),
            faults=FaultPlan(cfg.faults.kill_pool_round, cfg.faults.kill_validator_round, n),
            recorded=len(self.record.rows),
            last_result=self.record.last_round,
        )

    def start(self) -> None:
        run_keys = self.actors.keys(self.resume)
        if run_keys.mode == "fresh":  # clients sign with keys no config can re-derive
            self.fed = self.actors.fed = Federation(self.cfg, run_keys.clients)
        keys = list(run_keys.validators)
        self.validator_keys = keys
        self.initial = self.fed.initial_model()
        self.genesis = self._genesis([k.public_key for k in keys])
        self.script = GovernanceScript(self.fed, keys, self.genesis.chain_id)
        self.client_keys = [self.fed.client_key(i).public_key for i in range(self.cfg.clients)]
        self.client_accounts = ClientAccounts(
            self.client_keys,
            lambda keys: self.actors.call("accounts_info", keys),
            governance=bool(self.cfg.governance),
        )
        self.open_selected: tuple[bytes, ...] = ()
        self.actors.start(self.genesis, self.initial)
        ray_gauges = [RunGauges(self.record.run_id)] if self.cfg.metrics.ray else []
        self.live = LiveMetrics.open(self.cfg, self.run_dir, ray_gauges, say=self._say)

    def _genesis(self, validator_keys: list[bytes]) -> Genesis:
        """The chain starts now (see `Federation.genesis`); a resumed run keeps the genesis its
        validators stored."""
        if self.resume:
            with BlockStore(self.actors.node_dir(0), read_only=True) as store:
                return store.genesis()
        return self.fed.genesis(validator_keys, self.initial, int(time.time() * 1000))

    def _say(self, message: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"fedray: {message}")

    # --- carrying out the policy's actions -----------------------------------------------------
    def _dispatch(self, action: DispatchRound) -> None:
        import ray

        self._settle(action.round)
        timing = self.timings.setdefault(action.round, RoundTiming(time.time()))
        ref = ray.put(self.actors.call("get_blob", action.global_hash))  # pools get it by reference
        timing.dispatched_wall = time.time()
        ingresses = self.actors.live_ingresses()
        restores = []
        for idx in sorted(self.actors.fresh_pools):  # rebuilt pools resume their attack state
            saved = self.record.pool_state_before(idx, action.round)
            if saved is not None:
                pool = self.actors.pools[idx]
                restores.append(pool.restore.remote(self.actors.pool_caps[idx], saved))
        with contextlib.suppress(ray.exceptions.RayError):  # a dead pool fails its round below
            ray.get(restores)
        self.actors.fresh_pools.clear()
        for idx, pool in enumerate(self.actors.pools):
            cap = self.actors.pool_caps[idx]
            future = pool.train_round.remote(cap, action.round, ref, ingresses)
            self.pool_futures.setdefault(action.round, []).append((idx, future))

    def _settle(self, before: int, timeout_s: float = 60.0) -> None:
        """Collect the pools' answers of rounds before `before` (closed, so answered or crashed),
        so each pool's attack state is saved before it trains again."""
        import ray

        for round_ in [r for r in self.pool_futures if r < before]:
            futures = [f for _, f in self.pool_futures[round_]]
            ray.wait(futures, num_returns=len(futures), timeout=timeout_s)
            self._collect_pools(round_)

    def _governance(self, action: GovernanceStep) -> None:
        """Submit the proposals due at an opening round; vote on ours once they are open."""
        v0 = self.validator_keys[0].public_key
        if action.opened_round is not None:
            nonce = self.actors.call("next_nonces", [v0])[v0]
            deposit = self.genesis.params.gov_min_deposit
            self.actors.submit(
                self.script.due(action.opened_round, deposit, action.global_hash, nonce)
            )
        self.script.match(self.actors.call("governance_info").proposals)
        due = self.script.votes_due()
        if not due:
            return
        keys = [k.public_key for k in self.validator_keys]
        self.actors.submit(self.script.validator_votes(due, self.actors.call("next_nonces", keys)))
        ingresses = self.actors.live_ingresses()
        for pend in due:
            if pend.action.client_votes != "none":
                for idx, pool in enumerate(self.actors.pools):
                    cap = self.actors.pool_caps[idx]
                    pool.vote.remote(cap, pend.proposal_id, pend.action.client_votes, ingresses)

    def _collect_pools(self, round_: int) -> None:
        """Fold finished pool answers into the round's record; a pool that crashed is rebuilt and
        declares its clients' missed updates (the chain goes on without them)."""
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
            except ray.exceptions.RayActorError as exc:
                self.crashes[idx] = self.crashes.get(idx, 0) + 1
                if self.crashes[idx] > MAX_POOL_REBUILDS:
                    self._say(f"round {round_}: client pool {idx} keeps crashing; not rebuilt")
                    continue
                self._say(
                    f"round {round_}: client pool {idx} crashed; it is rebuilt and its clients "
                    "miss this round"
                )
                self.actors.pools[idx] = self.actors.new_pool(idx)
                pending.append(
                    (idx, self._skip(idx, round_, f"pool crashed ({type(exc).__name__})"))
                )
                continue
            except ray.exceptions.RayError as exc:  # the pool lives, its round raised
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
                pending.append((idx, self._skip(idx, round_, reason)))
                continue
            failed = out.get("failed", {})
            for reason in sorted(set(failed.values())):
                who = client_names(sorted(c for c, r in failed.items() if r == reason))
                self._say(f"round {round_}: {who} missed the update: {reason}")
            if out.get("attack_state") is not None:
                self.record.save_pool_state(idx, round_, out["attack_state"])
            if timing is not None and "train_s" in out:
                timing.pool_report(
                    out["train_s"],
                    out.get("sent_at", 0.0),
                    out.get("payload_bytes", 0),
                    len(out.get("ingress", [])),
                    sum(out.get("clipped", {}).values()),
                )
        if pending:
            self.pool_futures[round_] = pending
        else:
            self.pool_futures.pop(round_, None)

    def _skip(self, idx: int, round_: int, reason: str) -> Any:
        """Pool `idx` declares its clients' missed updates of `round_` (a future)."""
        ingresses = self.actors.live_ingresses()
        cap = self.actors.pool_caps[idx]
        return self.actors.pools[idx].skip_round.remote(cap, round_, reason, ingresses)

    def _record(self, result: RoundResultView, evaluator: Evaluator, start_wall: float) -> None:
        self._collect_pools(result.round)
        timing = self.timings.pop(result.round, RoundTiming(time.time()))
        aggregation_now = float(self.actors.call("status").aggregation_s)
        # seconds a validator spent aggregating since the last round (another validator may
        # answer after a crash, so never negative)
        aggregation_s = max(0.0, aggregation_now - self.aggregation_before)
        self.aggregation_before = aggregation_now
        rows = self.record.rows
        context = RoundContext(
            closed_wall=time.time(),
            start_wall=start_wall,
            height=self.policy.height,
            previous_txs=rows[-1]["cumulative_txs"] if rows else 0,
            model_bytes=sum(a.nbytes for a in self.initial.values()),
            pools=len(self.actors.pools),
        )
        model = self.actors.call("get_blob", result.global_after)
        economy = self.actors.call("economy_info")
        accounts = self.client_accounts.after_round(result, self.open_selected, economy)
        row = round_row(
            result,
            timing,
            evaluator.evaluate(model),
            aggregation_s,
            context,
            self.client_keys,
            accounts,
            economy,
        )
        self.record.add_row(row.as_dict())
        if self.on_round is not None:
            self.on_round(self.record.rows[-1])
        self.live.round(self.record.rows[-1])
        self.record.checkpoint(result.round, model, result.global_after)
        self.record.progress(
            {
                "name": self.cfg.name,
                "run_id": self.record.run_id,
                "finished": False,
                "rounds": len(self.record.rows),
                "of_rounds": self.cfg.rounds,
                "accuracy": row.accuracy,
                "global_model_hash": row.global_model_hash,
            }
        )
        for note in round_notes(row, self.cfg.chain.round_timeout_s):
            self._say(note)

    def _observe(self, first: bool) -> Tick:
        """The chain's round view now; the first time from the most advanced validator (after a
        kill they may stand at different heights)."""
        only = self.actors.most_advanced() if first else None
        info: RoundInfo = self.actors.call("round_info", self.policy.last_result, only=only)
        self.open_selected = info.selected if info.open else ()
        return Tick(time.time(), info, self.script.finished())

    def _start_consensus(self) -> None:
        """Start the validators once the first tick's dispatch (a resumed round) is delivered."""
        import ray

        for _ in range(2):  # a pool that crashes here is rebuilt and skips: wait for that too
            futures = [f for fs in self.pool_futures.values() for _, f in fs]
            if futures:
                wait_s = max(60.0, self.cfg.chain.round_timeout_s)
                ray.wait(futures, num_returns=len(futures), timeout=wait_s)
            for round_ in list(self.pool_futures):
                self._collect_pools(round_)
        self.actors.start_consensus()
        self.policy.consensus_started(time.time())

    def execute(self) -> RunResult:
        evaluator = Evaluator(self.fed)
        progress = progress_bar(self.cfg, len(self.record.rows))
        start_wall = time.time()
        first = True
        while self.policy.phase is not Phase.FINISHED:
            if self.should_stop is not None and self.should_stop():  # checked every tick (<= 2 s)
                raise RunStopped(f"stopped by its caller after {len(self.record.rows)} rounds")
            if not first:
                self.actors.call(
                    "wait_for_height", self.policy.height + 1, 2.0, timeout=30.0, operator=True
                )
            tick = self._observe(first)
            for open_round in list(self.pool_futures):
                self._collect_pools(open_round)
            for action in self.policy.observe(tick):
                if isinstance(action, RecordRound):
                    self._record(action.result, evaluator, start_wall)
                    row = self.record.rows[-1]
                    progress.update(1)
                    tx_s = row["cumulative_txs"] / max(1e-9, time.time() - start_wall)
                    progress.set_postfix(
                        acc=f"{row['accuracy']:.3f}", height=self.policy.height, tx_s=f"{tx_s:.1f}"
                    )
                elif isinstance(action, DispatchRound):
                    self._dispatch(action)
                elif isinstance(action, KillPool | KillValidator):
                    self.actors.kill(action)
                else:
                    self._governance(action)
            if first:
                self._start_consensus()
                first = False
        progress.close()
        if self.policy.budget_spent_after is not None:
            self._say(
                f"the federation's privacy budget is spent after round "
                f"{self.policy.budget_spent_after}: no client can take part within epsilon "
                f"{self.cfg.privacy.epsilon:g}; training stops after "
                f"{len(self.record.rows)} of {self.cfg.rounds} rounds"
            )
        return self._finish(evaluator, start_wall)

    def _finish(self, evaluator: Evaluator, start_wall: float) -> RunResult:
        info = self.actors.call("round_info", self.cfg.rounds)
        final_model = self.actors.call("get_blob", info.global_hash)
        extra: dict[str, Any] = {
            "validators_agree_up_to": self.actors.agreement(),
            "dead_validators": sorted(self.actors.health.dead),
            "governance": self.script.summary(),
            "economy": economy_summary(self.actors.call("economy_info"), self.genesis),
            "resumed": self.resume,
            "privacy": privacy_summary(
                info,
                self.client_accounts.read_all(),  # in chunks: a query takes 4,096 keys
                self.policy.budget_spent_after,
            ),
        }
        if self.cfg.baseline:
            extra["baseline_accuracy"] = evaluator.baseline(self.cfg)
        summary = final_summary(
            self.record,
            initial_accuracy=evaluator.evaluate(self.initial).accuracy,
            elapsed_seconds=time.time() - start_wall,
            height=info.height,
            global_hash=info.global_hash,
            extra=extra,
        )
        write_outputs(self.record, summary, final_model, self.fed)
        self.finished = True
        return RunResult(self.run_dir, self.record.rows, summary)

    @property
    def committed(self) -> bool:
        """Whether the chain got past genesis (the run left something worth keeping)."""
        return self.policy.height > 0 or bool(self.record.rows)

    def stop(self) -> None:
        self.live.close(self.finished)
        self.actors.stop()
