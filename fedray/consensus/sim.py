"""The consensus simulator: N engines over a seeded, faulty, virtual-time network, against an
adversary, with safety and liveness checked on every schedule.

    python -m fedray.consensus.sim --validators 4 --byzantine 1 --schedules 1000 --heights 4

Each schedule draws a `FaultPlan` (delays, drops, duplicates, reordering, partitions that heal,
crashes with restarts; see `sim_net`), the validators' stakes (`--powers`: equal, random, or mixed,
half each; the adversary always below 1/3), which validators are faulty, and for each Byzantine one a
set of behaviours (`sim_byzantine`: equivocation, silence, selective silence, lock amnesia, false
POL rounds, junk and future messages, invalid blocks, phantom votes, payload withholding);
`--twins` run as two honest engines with the same key. Every node runs the real engine through the
reference `Driver` on an application from a `ChainFactory` (`sim_app`; the built-in small chain, or
the real ledger app via `python -m fedray.node.sim_ledger`). A crash drops the engine's memory; the
application, signer state and proposer schedule survive. Lagging nodes catch up by `sync` batches.
Nodes that make no progress for a gossip interval resend what `gossip()` lists.

Checks (`sim_check`): safety, evidence, and liveness after GST (each height within a round bound,
every target height before GST + the window). A schedule runs until every honest node has committed
`--heights` heights and `--heights-after-gst` more after GST. Prints one summary line and exits 1 on
any safety violation, false evidence or liveness failure.

Deliberately ignored: message sizes and bandwidth.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fedray.consensus.driver import Driver, MemorySignerStore
from fedray.consensus.messages import (
    Message,
    ProposalMessage,
    ScheduleTimeout,
    TimeoutFired,
    VoteMessage,
)
from fedray.consensus.proposer import ProposerSchedule
from fedray.consensus.signer import STEP_PROPOSE
from fedray.consensus.sim_app import GENESIS_TIME, ChainFactory, ChainSpec, SimChain, SmallChain
from fedray.consensus.sim_byzantine import (
    BEHAVIOURS,
    SPLIT,
    ByzantineTransport,
    draw_behaviours,
    draw_scene,
    forget_lock,
    forgets,
)
from fedray.consensus.sim_check import Checker, ScheduleResult
from fedray.consensus.sim_net import FaultPlan, Network, draw_plan
from fedray.consensus.sim_node import (
    BYZANTINE,
    HONEST,
    SPLIT_DECISION,
    TWIN,
    NodeTransport,
    Scene,
    SimNode,
    Wire,
)
from fedray.consensus.state import EngineConfig, TimeoutConfig, gossip
from fedray.consensus.sync import SyncBatch, batch_for
from fedray.core.block import PRECOMMIT
from fedray.errors import FedrayError

SIM_TIMEOUTS = TimeoutConfig(300, 100, 200, 100, 200, 100)
STAKE_UNIT = 1000
_DELIVER, _TIMER, _GOSSIP, _CRASH, _RESTART, _GST = range(6)


@dataclass(frozen=True)
class SimConfig:
    validators: int = 4
    byzantine: int = 0
    twins: int = 0
    heights: int = 4
    heights_after_gst: int = 2
    seed: int = 0
    powers: str = "mixed"  # equal | random | mixed (half the schedules each)
    behaviours: tuple[str, ...] = BEHAVIOURS
    standby: int = 0  # honest nodes outside the genesis set (they may join by staking)
    max_gst_ms: int = 3000
    max_partitions: int = 2
    max_crashes: int = 1
    max_phase_faults: int = 3
    scene_rate: float = 0.5  # share of eligible rounds the adversary stages a scene in
    gossip_ms: int = 250
    liveness_window_ms: int = 60_000
    max_events: int = 400_000
    timeouts: TimeoutConfig = SIM_TIMEOUTS

    @property
    def within_bound(self) -> bool:
        """Faulty keys are at most f of 3f+1 validators (their power is then drawn below 1/3)."""
        return 3 * (self.byzantine + self.twins) < self.validators


class _BeyondBound(Exception):
    """The validator set left the model (see `Checker.validators`): the schedule ends here."""


def is_after(message: Wire, cut: tuple[int, int]) -> bool:
    """Whether `message` is a precommit of round `cut` or anything later (catch-up included)."""
    if isinstance(message, SyncBatch):
        return True
    height, round_ = cut
    if message.height != height:
        return message.height > height
    if isinstance(message, VoteMessage) and message.vote.type == PRECOMMIT:
        return message.round >= round_
    return message.round > round_


def draw_stakes(rng: random.Random, cfg: SimConfig, faulty: Sequence[int]) -> tuple[int, ...]:
    n = cfg.validators
    unequal = cfg.powers == "random" or (cfg.powers == "mixed" and rng.random() < 0.5)
    for _ in range(20 if unequal else 0):
        stakes = tuple(rng.randint(1, 10) * STAKE_UNIT for _ in range(n))
        total, adversary = sum(stakes), sum(stakes[i] for i in faulty)
        if 3 * max(stakes) > 2 * (total - adversary):
            continue  # one validator would decide alone, at least once the adversary is banned
        if not cfg.within_bound or 3 * adversary < total:
            return stakes
    return (10 * STAKE_UNIT,) * n


class Simulation:
    """One schedule: build nodes, run the event loop, check."""

    def __init__(self, cfg: SimConfig, index: int, chains: ChainFactory = SmallChain) -> None:
        self.cfg = cfg
        self.rng = random.Random(f"{cfg.seed}:{index}")
        self.result = ScheduleResult(index)
        n, rng = cfg.validators, self.rng
        faulty = rng.sample(range(n), cfg.byzantine + cfg.twins)
        byzantine, twins = set(faulty[: cfg.byzantine]), faulty[cfg.byzantine :]
        stakes = draw_stakes(rng, cfg, faulty)
        spec = ChainSpec(
            n, stakes, cfg.standby, tuple(twins), frozenset(faulty), f"{cfg.seed}:{index}"
        )
        self.chain: SimChain = chains(spec)
        keys = self.chain.keys
        schedule = ProposerSchedule.genesis(self.chain.app(0).validators(1))
        self.nodes: list[SimNode] = []
        for i in range(len(keys) + len(twins)):
            v = i if i < len(keys) else twins[i - len(keys)]
            kind = BYZANTINE if v in byzantine else TWIN if v in twins else HONEST
            drawn = draw_behaviours(rng, cfg.behaviours) if kind == BYZANTINE else frozenset()
            skew = rng.randint(0, 50)
            self.nodes.append(SimNode(i, keys[v], kind, self.chain.app(i), schedule, skew, drawn))
        pairs = [(t, len(keys) + j) for j, t in enumerate(twins)]
        self.plan: FaultPlan = draw_plan(
            rng,
            len(self.nodes),
            pairs,
            cfg.max_gst_ms,
            cfg.max_partitions,
            cfg.max_crashes,
            max_phase_faults=cfg.max_phase_faults,
            heights=cfg.heights,
        )
        self.net = Network(rng, self.plan)
        self.honest = [node for node in self.nodes if node.kind == HONEST]
        self.faulty_keys = frozenset(keys[i].public_key for i in faulty)
        self.check = Checker(self.chain.chain_id, self.result, self.faulty_keys, cfg.within_bound)
        self.sync_sent: dict[tuple[int, int], int] = {}
        self.target: int | None = None  # heights every honest node must reach, known at GST
        self.scenes: dict[tuple[int, int], Scene | None] = {}  # drawn when first asked
        self.cut_off: dict[int, tuple[int, int]] = {}  # node -> (height, round), until GST

    # --- wiring (the `World` the transports see) ----------------------------------------------
    def boot(self, node: SimNode) -> None:
        if node.incarnation:  # a restart: what the disk holds
            node.app = self.chain.reopen(node.id)
            if forgets(node):
                node.store = MemorySignerStore()
        node.incarnation += 1
        inc = node.incarnation
        transport_cls = ByzantineTransport if node.kind == BYZANTINE else NodeTransport
        config = EngineConfig(self.chain.chain_id, node.key, self.cfg.timeouts)
        node.driver = Driver.open(
            config,
            node.app,
            node.store,
            transport_cls(self, node, inc),
            node.schedule,
            on_decide=lambda b, c: self.on_decide(node, b, c),
            on_evidence=lambda e: self.check.evidence(node, e),
        )
        node.last_gossip_height = None
        node.driver.start()
        self.after(node)
        self.net.at(self.net.now + self.cfg.gossip_ms, (_GOSSIP, node.id, inc))

    def send(self, src: SimNode, dst: int, message: Wire) -> None:
        tag = None
        if isinstance(message, VoteMessage):
            tag = (message.height, message.round, message.vote.type)
            if message.vote.type == PRECOMMIT:
                self.scene(message.height, message.round)  # may cut the sender off
        elif isinstance(message, ProposalMessage):
            tag = (message.height, message.round, STEP_PROPOSE)
        cut = self.cut_off.get(src.id)
        if cut is not None and self.net.now < self.plan.gst_ms and is_after(message, cut):
            return
        self.net.send(src.id, dst, (_DELIVER, src.id, dst, message), tag)

    def scene(self, height: int, round_: int) -> Scene | None:
        """The adversary's plan for (height, round), before GST only (see `sim_byzantine`). A
        split decision cuts the favourite off from its precommits of that round on, until GST."""
        if self.net.now >= self.plan.gst_ms or not self.cfg.scene_rate:
            return None
        key = (height, round_)
        if key not in self.scenes:
            scene = draw_scene(
                self.rng, self.cfg.scene_rate, self.nodes, self.faulty_keys, height, round_
            )
            if scene is not None and scene.kind == SPLIT_DECISION:
                self.cut_off.setdefault(scene.favourite, (height, round_))
            self.scenes[key] = scene
        return self.scenes[key]

    def timer(self, node: SimNode, inc: int, t: ScheduleTimeout) -> None:
        fired = TimeoutFired(t.height, t.round, t.step)
        self.net.at(self.net.now + t.duration_ms, (_TIMER, node.id, inc, fired))

    def now_ms(self, node: SimNode) -> int:
        return GENESIS_TIME + self.net.now + node.skew

    def on_decide(self, node: SimNode, block: Any, cert: Any) -> None:
        if node.kind == HONEST and node.driver is not None:
            self.check.decided(node, node.driver.state, block, cert)
            self.check.validators(node.app.validators(block.height + 1))
            if self.result.beyond_bound:
                raise _BeyondBound()

    def after(self, node: SimNode) -> None:
        """After each event a node handled: persist its schedule, and the adversary's amnesia."""
        assert node.driver is not None
        node.schedule = node.driver.state.schedule  # persisted with each commit
        if forgets(node):
            forget_lock(node.driver)

    # --- event loop ---------------------------------------------------------------------------
    def run(self) -> ScheduleResult:
        cfg, net, plan, r = self.cfg, self.net, self.plan, self.result
        try:
            for node in self.nodes:
                self.boot(node)
            for node_id, at, restart in plan.crashes:
                net.at(at, (_CRASH, node_id))
                net.at(restart, (_RESTART, node_id))
            net.at(plan.gst_ms, (_GST,))
            deadline = plan.gst_ms + cfg.liveness_window_ms
            while r.events < cfg.max_events and not (r.safety_violations or r.false_evidence):
                popped = net.pop()
                if popped is None or popped[0] > deadline:
                    break
                r.events += 1
                try:
                    self.dispatch(popped[1])
                except _BeyondBound:
                    break
                if self.target is not None and all(
                    n.app.height >= self.target for n in self.honest
                ):
                    break
        finally:
            self.chain.close()
        r.gst_ms, r.end_ms = plan.gst_ms, net.now
        r.evidence = len(self.check.evidence_seen)
        r.heights_committed = min((n.app.height for n in self.honest), default=0)
        stalled = self.target is None or r.heights_committed < self.target
        if stalled and cfg.within_bound and not (r.safety_violations or r.beyond_bound):
            r.liveness_failure = True
            r.notes.append(f"stalled at height {r.heights_committed + 1} (t={net.now} ms)")
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
            self.nodes[item[1]].driver = None
        elif kind == _RESTART:
            self.boot(self.nodes[item[1]])
        elif kind == _GST:
            live = [n.driver.state for n in self.honest if n.driver is not None]
            self.check.at_gst(live)
            top = max((n.app.height for n in self.honest), default=0)
            self.target = max(self.cfg.heights, top + self.cfg.heights_after_gst)

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
            if message.height < d.state.height:  # the sender is behind: serve it
                self.answer_sync(node, src, message.height)
            elif message.height > d.state.height and self.nodes[src].driver is not None:
                # we are behind: ask the sender (what the runtime's catch-up does on a status poll)
                self.answer_sync(self.nodes[src], node.id, d.state.height)
            self.guarded(node, d.handle, message)

    def guarded(self, node: SimNode, fn: Callable[..., None], *args: Any) -> None:
        """Run a driver call; a block the application cannot execute after consensus certified it
        means the chain forked (more than f faulty), which is a safety violation, not a crash."""
        try:
            fn(*args)
        except FedrayError as exc:
            if node.kind == HONEST:
                self.check.violation(f"node {node.id} cannot apply a certified block: {exc}")
            node.driver = None  # this incarnation is wedged
            return
        if node.driver is not None:
            self.after(node)

    def answer_sync(self, node: SimNode, peer: int, their_height: int) -> None:
        if SPLIT in node.behaviours:
            return  # it wants them to stay behind
        last = self.sync_sent.get((node.id, peer), -(10**9))
        if self.net.now - last < self.cfg.gossip_ms // 2:
            return  # one answer per peer per half gossip interval
        if node.driver is None:
            return
        batch = batch_for(node.app, their_height, node.driver.state.height)
        if batch is not None:
            self.sync_sent[(node.id, peer)] = self.net.now
            self.send(node, peer, batch)

    def gossip_tick(self, node: SimNode, inc: int) -> None:
        if node.driver is None or node.incarnation != inc:
            return
        if node.kind == HONEST:
            self.chain.feed(node.id, self.now_ms(node))
        s = node.driver.state
        if s.height == node.last_gossip_height:  # no new height for a whole interval: resend
            for message in gossip(s):
                node.driver.transport.broadcast(message)
        node.last_gossip_height = s.height
        self.net.at(self.net.now + self.cfg.gossip_ms, (_GOSSIP, node.id, inc))


def run(
    cfg: SimConfig,
    schedules: int,
    verbose: bool = False,
    chains: ChainFactory = SmallChain,
    start: int = 0,
) -> list[ScheduleResult]:
    results = []
    for index in range(start, start + schedules):
        r = Simulation(cfg, index, chains).run()
        if verbose and r.notes:
            print(f"schedule {index}: " + "; ".join(r.notes[:3]), file=sys.stderr)
        results.append(r)
    return results


def summary(cfg: SimConfig, results: list[ScheduleResult], seconds: float) -> str:
    counted = [r for r in results if not r.beyond_bound]
    return (
        f"schedules={len(results)} validators={cfg.validators} byzantine={cfg.byzantine} "
        f"twins={cfg.twins} heights_committed={sum(r.heights_committed for r in results)} "
        f"safety_violations={sum(r.safety_violations for r in counted)} "
        f"false_evidence={sum(r.false_evidence for r in counted)} "
        f"liveness_failures={sum(r.liveness_failure for r in counted)} "
        f"beyond_bound={len(results) - len(counted)} "
        f"max_rounds_after_gst={max((r.rounds_after_gst for r in counted), default=0)} "
        f"round_bound={max((r.round_bound for r in counted), default=0)} "
        f"evidence={sum(r.evidence for r in results)} "
        f"schedules_per_s={len(results) / max(seconds, 1e-9):.1f}"
    )


def failures(results: list[ScheduleResult]) -> int:
    return sum(r.failed_check is not None for r in results)


def config_from_args(a: argparse.Namespace) -> SimConfig:
    return SimConfig(
        validators=a.validators,
        byzantine=a.byzantine,
        twins=a.twins,
        heights=a.heights,
        seed=a.seed,
        powers=a.powers,
        behaviours=tuple(a.behaviours.split(",")) if a.behaviours else BEHAVIOURS,
        standby=a.standby,
        max_crashes=a.crashes,
        max_partitions=a.partitions,
    )


def add_arguments(ap: argparse.ArgumentParser, chains: Sequence[str]) -> None:
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--byzantine", type=int, default=0, help="Byzantine validators")
    ap.add_argument("--twins", type=int, default=0, help="validators run as two engines")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heights", type=int, default=4)
    ap.add_argument("--powers", choices=("equal", "random", "mixed"), default="mixed")
    ap.add_argument("--behaviours", default="", help=f"comma list from {','.join(BEHAVIOURS)}")
    ap.add_argument("--standby", type=int, default=0, help="honest non-validators that may join")
    ap.add_argument("--crashes", type=int, default=1, help="max crashes per schedule")
    ap.add_argument("--partitions", type=int, default=2, help="max extra partitions per schedule")
    ap.add_argument("--app", choices=chains, default=chains[0], help="the simulated application")


def main(argv: list[str] | None = None, chains: Mapping[str, ChainFactory] | None = None) -> int:
    chains = chains or {"small": SmallChain}
    ap = argparse.ArgumentParser(
        prog="python -m fedray.consensus.sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(ap, list(chains))
    ap.add_argument("--schedules", type=int, default=100)
    ap.add_argument("--verbose", action="store_true", help="print each failing schedule")
    a = ap.parse_args(argv)
    if a.byzantine + a.twins > a.validators:
        ap.error("more faulty validators than validators")
    cfg = config_from_args(a)
    t0 = time.perf_counter()
    results = run(cfg, a.schedules, a.verbose, chains[a.app])
    print(summary(cfg, results, time.perf_counter() - t0))
    return 1 if failures(results) else 0


if __name__ == "__main__":
    sys.exit(main())
