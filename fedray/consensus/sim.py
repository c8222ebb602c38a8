"""The consensus simulator: N engines over a seeded, faulty, virtual-time network, with checkers.

    python -m fedray.consensus.sim --validators 4 --byzantine 1 --schedules 1000 --heights 4

Each schedule draws a `FaultPlan` (delays, drops, duplicates, reordering, partitions that heal,
crashes with restarts; see `sim_net`) and chooses which validators are faulty: `--byzantine` ones
equivocate as proposers and double-vote (`sim_byzantine`), `--twins` ones run as two honest engines
with the same key. Every node runs the real engine through the reference `Driver`, on `SimApp`, so
blocks, certificates and evidence are the core's. A crash drops the engine's memory; the signer state,
the committed chain and the proposer schedule survive (the node's "disk"). Lagging nodes catch up by
`sync` batches, verified against certificates. Nodes that make no progress for a gossip interval
resend what they hold (the paper's eventual-delivery assumption after GST).

Checkers: *safety*: no two honest nodes commit different blocks at a height, every decided
certificate verifies, and no honest node is handed a certified block it cannot execute; *evidence*:
every piece verifies and names a faulty key; *liveness* (only when faulty keys are within f): every
honest node commits all `--heights` heights before GST + `liveness_window_ms`, and the rounds each
honest node advances after GST before its next commit (`max_rounds_after_gst`, the observed bound)
stay within `--round-bound` (default 2(f+1)+2). Prints one summary line and exits 1 on any safety
violation, false evidence or liveness failure.

Deliberately ignored: message sizes and bandwidth, and Byzantine behaviour beyond equivocation
(silence is covered by crashes and drops).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fedray.consensus.driver import Driver, MemorySignerStore
from fedray.consensus.engine import gossip
from fedray.consensus.messages import Message, ScheduleTimeout, TimeoutFired
from fedray.consensus.proposer import ProposerSchedule
from fedray.consensus.sim_app import ExecCache, SimApp
from fedray.consensus.sim_byzantine import ByzantineTransport, NodeTransport
from fedray.consensus.sim_net import FaultPlan, Network, draw_plan
from fedray.consensus.state import EngineConfig, TimeoutConfig
from fedray.consensus.sync import SyncBatch, batch_for, verify_certified
from fedray.core.block import Block, CommitCertificate
from fedray.core.crypto import PrivateKey
from fedray.core.devchain import dev_genesis
from fedray.core.evidence import Evidence
from fedray.core.state import State
from fedray.errors import FedrayError

CHAIN_ID = "fedray-sim"
SIM_TIMEOUTS = TimeoutConfig(300, 100, 200, 100, 200, 100)
HONEST, BYZANTINE, TWIN = "honest", "byzantine", "twin"
_DELIVER, _TIMER, _GOSSIP, _CRASH, _RESTART, _GST = range(6)


@dataclass(frozen=True)
class SimConfig:
    validators: int = 4
    byzantine: int = 0
    twins: int = 0
    heights: int = 4
    seed: int = 0
    max_gst_ms: int = 3000
    max_partitions: int = 2
    max_crashes: int = 1
    gossip_ms: int = 250
    liveness_window_ms: int = 60_000
    max_events: int = 400_000
    timeouts: TimeoutConfig = SIM_TIMEOUTS
    round_bound: int | None = None  # rounds after GST before a new commit; None: 2(f+1)+2

    @property
    def within_bound(self) -> bool:
        """Faulty keys (Byzantine + twinned) are at most f of 3f+1 equal-power validators."""
        return 3 * (self.byzantine + self.twins) < self.validators

    @property
    def rounds_allowed(self) -> int:
        """After GST a round with an honest proposer and long enough timeouts decides; with equal
        powers the rotation reaches an honest proposer within f+1 rounds. Twice that, plus two
        rounds for the honest nodes to line up their rounds, is the bound checked."""
        f = (self.validators - 1) // 3
        return self.round_bound if self.round_bound is not None else 2 * (f + 1) + 2


@dataclass
class ScheduleResult:
    index: int
    heights_committed: int = 0  # lowest committed height over honest nodes
    safety_violations: int = 0
    false_evidence: int = 0
    liveness_failure: bool = False
    rounds_after_gst: int = 0
    evidence: int = 0
    events: int = 0
    gst_ms: int = 0
    end_ms: int = 0
    notes: list[str] = field(default_factory=list)


@lru_cache(maxsize=8)
def _world(n: int) -> tuple[State, tuple[PrivateKey, ...], ProposerSchedule]:
    genesis, keys, _ = dev_genesis(CHAIN_ID, n_validators=n, n_accounts=0)
    state = genesis.state()
    return state, tuple(keys), ProposerSchedule.genesis(state.validators)


class SimNode:
    """A simulated machine: its disk (app, signer store, schedule) and, when up, its driver."""

    def __init__(
        self,
        index: int,
        key: PrivateKey,
        kind: str,
        state: State,
        schedule: ProposerSchedule,
        cache: ExecCache,
        skew: int,
    ) -> None:
        self.id, self.key, self.kind, self.skew = index, key, kind, skew
        self.app = SimApp(state, key, cache)
        self.store = MemorySignerStore()
        self.schedule = schedule  # of height app.height + 1
        self.driver: Driver | None = None
        self.incarnation = 0
        self.last_gossip_key: int | None = None
        self.gst_tracking = False
        self.gst_height = self.last_round = self.rounds_after_gst = 0


class Simulation:
    """One schedule: build nodes, run the event loop, check."""

    def __init__(self, cfg: SimConfig, index: int) -> None:
        self.cfg = cfg
        self.rng = random.Random(f"{cfg.seed}:{index}")
        self.result = ScheduleResult(index)
        genesis_state, keys, schedule = _world(cfg.validators)
        self.genesis_time = genesis_state.last_block_time
        faulty = self.rng.sample(range(cfg.validators), cfg.byzantine + cfg.twins)
        byzantine, twins = set(faulty[: cfg.byzantine]), faulty[cfg.byzantine :]
        self.faulty_keys = {keys[i].public_key for i in faulty}
        cache = ExecCache()
        self.nodes = []
        for i in range(cfg.validators + len(twins)):
            v = i if i < cfg.validators else twins[i - cfg.validators]
            kind = BYZANTINE if v in byzantine else TWIN if v in twins else HONEST
            self.nodes.append(
                SimNode(i, keys[v], kind, genesis_state, schedule, cache, self.rng.randint(0, 50))
            )
        pairs = [(t, cfg.validators + j) for j, t in enumerate(twins)]
        self.plan: FaultPlan = draw_plan(
            self.rng, len(self.nodes), pairs, cfg.max_gst_ms, cfg.max_partitions, cfg.max_crashes
        )
        self.net = Network(self.rng, self.plan)
        self.honest = [n for n in self.nodes if n.kind == HONEST]
        self.canonical: dict[int, bytes] = {}  # height -> first honest commit
        self.evidence_seen: set[bytes] = set()
        self.sync_sent: dict[tuple[int, int], int] = {}

    # --- wiring -------------------------------------------------------------------------------
    def boot(self, node: SimNode) -> None:
        node.incarnation += 1
        inc = node.incarnation
        transport_cls = ByzantineTransport if node.kind == BYZANTINE else NodeTransport
        transport = transport_cls(self, node, inc)
        config = EngineConfig(CHAIN_ID, node.key, self.cfg.timeouts)
        node.driver = Driver.open(
            config,
            node.app,
            node.store,
            transport,
            node.schedule,
            on_decide=lambda b, c: self.on_decide(node, b, c),
            on_evidence=lambda e: self.on_evidence(node, e),
        )
        node.last_gossip_key = None
        node.driver.start()
        self.after(node)
        self.net.at(self.net.now + self.cfg.gossip_ms, (_GOSSIP, node.id, inc))

    def broadcast(self, node: SimNode, message: Message | SyncBatch) -> None:
        for peer in self.nodes:
            if peer is not node:
                self.send(node, peer.id, message)

    def send(self, node: SimNode, dst: int, message: Message | SyncBatch) -> None:
        self.net.send(node.id, dst, (_DELIVER, node.id, dst, message))

    def timer(self, node: SimNode, inc: int, t: ScheduleTimeout) -> None:
        fired = TimeoutFired(t.height, t.round, t.step)
        self.net.at(self.net.now + t.duration_ms, (_TIMER, node.id, inc, fired))

    def now_ms(self, node: SimNode) -> int:
        return self.genesis_time + self.net.now + node.skew

    # --- checkers -----------------------------------------------------------------------------
    def on_decide(self, node: SimNode, block: Block, cert: CommitCertificate) -> None:
        if node.kind != HONEST:
            return
        try:  # the app just committed: `last_validators` signed this block
            verify_certified(CHAIN_ID, node.app.state.last_validators, block, cert)
        except FedrayError as exc:
            self.violation(
                f"node {node.id} decided height {block.height} on a bad certificate: {exc}"
            )
        first = self.canonical.setdefault(block.height, block.hash)
        if first != block.hash:
            self.violation(
                f"fork at height {block.height}: node {node.id} committed "
                f"{block.hash.hex()[:12]}, another honest node {first.hex()[:12]}"
            )

    def on_evidence(self, node: SimNode, ev: Evidence) -> None:
        h = ev.hash()
        if h in self.evidence_seen:
            return  # the same evidence from another node: already checked
        self.evidence_seen.add(h)
        try:
            ev.verify(CHAIN_ID)
        except FedrayError as exc:
            self.result.false_evidence += 1
            self.result.notes.append(f"node {node.id} produced invalid evidence: {exc}")
            return
        if ev.offender not in self.faulty_keys:
            self.result.false_evidence += 1
            self.result.notes.append(f"node {node.id} accused honest {ev.offender.hex()[:12]}")

    def violation(self, note: str) -> None:
        self.result.safety_violations += 1
        self.result.notes.append(note)

    def after(self, node: SimNode) -> None:
        """Bookkeeping after each event a node handled: its disk and the liveness counters."""
        assert node.driver is not None
        s = node.driver.state
        node.schedule = s.schedule  # persisted with the commit; heights advance atomically here
        if node.gst_tracking:
            if s.height > node.gst_height:
                node.gst_tracking = False
                self.result.rounds_after_gst = max(
                    self.result.rounds_after_gst, node.rounds_after_gst
                )
            elif s.round > node.last_round:
                node.rounds_after_gst += s.round - node.last_round
                node.last_round = s.round

    # --- event loop ---------------------------------------------------------------------------
    def run(self) -> ScheduleResult:
        cfg, net, plan = self.cfg, self.net, self.plan
        for node in self.nodes:
            self.boot(node)
        for node_id, at, restart in plan.crashes:
            net.at(at, (_CRASH, node_id))
            net.at(restart, (_RESTART, node_id))
        net.at(plan.gst_ms, (_GST,))
        deadline = plan.gst_ms + cfg.liveness_window_ms
        events = 0
        while events < cfg.max_events and not self.result.safety_violations:
            popped = net.pop()
            if popped is None or popped[0] > deadline:
                break
            events += 1
            self.dispatch(popped[1])
            if all(n.app.height >= cfg.heights for n in self.honest) and net.now >= plan.gst_ms:
                break
        r = self.result
        r.events, r.gst_ms, r.end_ms = events, plan.gst_ms, net.now
        r.evidence = len(self.evidence_seen)
        r.heights_committed = min((n.app.height for n in self.honest), default=0)
        if cfg.within_bound and not r.safety_violations:
            if r.heights_committed < cfg.heights:
                r.liveness_failure = True
                r.notes.append(f"stalled at height {r.heights_committed + 1} (t={net.now} ms)")
            if r.rounds_after_gst > cfg.rounds_allowed:
                r.liveness_failure = True
                r.notes.append(f"{r.rounds_after_gst} rounds after GST before a new commit")
        return r

    def dispatch(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == _DELIVER:
            _, src, dst, message = item
            self.deliver(self.nodes[dst], src, message)
        elif kind == _TIMER:
            _, node_id, inc, fired = item
            node = self.nodes[node_id]
            if node.driver is not None and node.incarnation == inc:
                self.guarded(node, node.driver.handle, fired)
        elif kind == _GOSSIP:
            _, node_id, inc = item
            self.gossip_tick(self.nodes[node_id], inc)
        elif kind == _CRASH:
            node = self.nodes[item[1]]
            node.driver, node.gst_tracking = None, False
        elif kind == _RESTART:
            self.boot(self.nodes[item[1]])
        elif kind == _GST:
            for node in self.honest:
                if node.driver is not None:
                    node.gst_tracking = True
                    node.gst_height = node.driver.state.height
                    node.last_round = max(node.driver.state.round, 0)

    def deliver(self, node: SimNode, src: int, message: Message | SyncBatch) -> None:
        d = node.driver
        if d is None:
            return
        if isinstance(message, SyncBatch):
            for block, cert in message.items:
                if node.driver is not d:
                    break
                self.guarded(node, d.deliver_certified, block, cert)
        else:
            if message.height < d.state.height:
                self.answer_sync(node, src, message.height)
            self.guarded(node, d.handle, message)

    def guarded(self, node: SimNode, fn: Callable[..., None], *args: Any) -> None:
        """Run a driver call; a block the application cannot execute after consensus certified it
        means the chain forked (more than f faulty), which is a safety violation, not a crash."""
        try:
            fn(*args)
        except FedrayError as exc:
            if node.kind == HONEST:
                self.violation(f"node {node.id} cannot apply a certified block: {exc}")
            node.driver = None  # this incarnation is wedged
            return
        self.after(node)

    def answer_sync(self, node: SimNode, peer: int, their_height: int) -> None:
        last = self.sync_sent.get((node.id, peer), -(10**9))
        if self.net.now - last < self.cfg.gossip_ms // 2:
            return  # one answer per peer per half gossip interval
        assert node.driver is not None
        batch = batch_for(node.app, their_height, node.driver.state.height)
        if batch is not None:
            self.sync_sent[(node.id, peer)] = self.net.now
            self.send(node, peer, batch)

    def gossip_tick(self, node: SimNode, inc: int) -> None:
        if node.driver is None or node.incarnation != inc:
            return
        s = node.driver.state
        key = s.height
        if key == node.last_gossip_key:  # no new height for a whole interval: resend
            for message in gossip(s):
                node.driver.transport.broadcast(message)
        node.last_gossip_key = key
        self.net.at(self.net.now + self.cfg.gossip_ms, (_GOSSIP, node.id, inc))


def run(cfg: SimConfig, schedules: int, verbose: bool = False) -> list[ScheduleResult]:
    results = []
    for index in range(schedules):
        r = Simulation(cfg, index).run()
        if verbose and (r.notes or r.safety_violations):
            print(f"schedule {index}: " + "; ".join(r.notes[:3]), file=sys.stderr)
        results.append(r)
    return results


def summary(cfg: SimConfig, results: list[ScheduleResult], seconds: float) -> str:
    return (
        f"schedules={len(results)} validators={cfg.validators} byzantine={cfg.byzantine} "
        f"twins={cfg.twins} heights_committed={sum(r.heights_committed for r in results)} "
        f"safety_violations={sum(r.safety_violations for r in results)} "
        f"false_evidence={sum(r.false_evidence for r in results)} "
        f"liveness_failures={sum(r.liveness_failure for r in results)} "
        f"max_rounds_after_gst={max((r.rounds_after_gst for r in results), default=0)} "
        f"round_bound={cfg.rounds_allowed} "
        f"evidence={sum(r.evidence for r in results)} "
        f"schedules_per_s={len(results) / max(seconds, 1e-9):.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m fedray.consensus.sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--byzantine", type=int, default=0, help="equivocating validators")
    ap.add_argument("--twins", type=int, default=0, help="validators run as two engines")
    ap.add_argument("--schedules", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heights", type=int, default=4)
    ap.add_argument("--crashes", type=int, default=1, help="max crashes per schedule")
    ap.add_argument("--partitions", type=int, default=2, help="max extra partitions per schedule")
    ap.add_argument(
        "--round-bound",
        type=int,
        default=None,
        help="max rounds after GST before a new commit (default 2(f+1)+2)",
    )
    ap.add_argument("--verbose", action="store_true", help="print each failing schedule")
    a = ap.parse_args(argv)
    if a.byzantine + a.twins > a.validators:
        ap.error("more faulty validators than validators")
    cfg = SimConfig(
        validators=a.validators,
        byzantine=a.byzantine,
        twins=a.twins,
        heights=a.heights,
        seed=a.seed,
        max_crashes=a.crashes,
        max_partitions=a.partitions,
        round_bound=a.round_bound,
    )
    t0 = time.perf_counter()
    results = run(cfg, a.schedules, a.verbose)
    print(summary(cfg, results, time.perf_counter() - t0))
    bad = sum(r.safety_violations + r.false_evidence + r.liveness_failure for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
