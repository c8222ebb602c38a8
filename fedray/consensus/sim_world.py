"""One schedule of the simulator: `Simulation` builds the nodes, runs the event loop, and checks.

It is the `World` the transports see (`sim_node`): it sends through the faulty network
(`sim_net`), stages the adversary's scenes before GST (`sim_byzantine.draw_scene`; a split decision
cuts the favourite off from its precommits of that round on), keeps every node's "disk" across
crashes, lets lagging nodes catch up (a node serves certified blocks to a peer whose messages show
it behind, and asks a peer whose messages show it ahead), feeds the chain's workload to live honest
nodes, and reports decisions and evidence to the `Checker`.

Deliberately ignored: drawing configurations (`sim_config`) and summarizing runs (`sim`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
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
    SPLIT,
    ByzantineTransport,
    draw_behaviours,
    draw_scene,
    forget_lock,
    forgets,
)
from fedray.consensus.sim_check import Checker, ScheduleResult
from fedray.consensus.sim_config import SimConfig, draw_stakes
from fedray.consensus.sim_net import FaultPlan, Network, draw_plan
from fedray.consensus.sim_node import (
    BYZANTINE,
    HONEST,
    SPLIT_DECISION,
    SPLIT_PROPOSAL,
    TWIN,
    NodeTransport,
    Scene,
    SimNode,
    Wire,
)
from fedray.consensus.state import EngineConfig, gossip
from fedray.consensus.sync import SyncBatch, batch_for
from fedray.core.block import PRECOMMIT, Block, CommitCertificate
from fedray.errors import FedrayError

_DELIVER, _TIMER, _GOSSIP, _CRASH, _RESTART, _GST = range(6)


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
        self.last_progress = 0  # virtual time an honest node last changed height, round or step
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
            scene = self.scene(message.height, message.round)
            if scene and scene.kind == SPLIT_PROPOSAL and src.honest and dst == scene.favourite:
                return  # the favourite must see the other block only after GST
        cut = self.cut_off.get(src.id)
        if cut is not None and self.net.now < self.plan.gst_ms and is_after(message, cut):
            return
        self.net.send(src.id, dst, (_DELIVER, src.id, dst, message), tag)

    def scene(self, height: int, round_: int) -> Scene | None:
        """The adversary's plan for (height, round), before GST only (see `sim_byzantine`). A
        split decision cuts the favourite off from its precommits of that round on, until GST; in
        a split proposal, honest nodes' proposals of that round do not reach the favourite."""
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

    def on_decide(self, node: SimNode, block: Block, cert: CommitCertificate) -> None:
        if node.kind == HONEST and node.driver is not None:
            self.check.decided(node, node.driver.state, block, cert)
            self.check.validators(node.app.validators(block.height + 1))
            if self.result.beyond_bound:
                raise _BeyondBound()

    def after(self, node: SimNode) -> None:
        """After each event a node handled: persist its schedule, and the adversary's amnesia."""
        assert node.driver is not None
        s = node.driver.state
        node.schedule = s.schedule  # persisted with each commit
        if forgets(node):
            forget_lock(node.driver)
        elif node.kind == HONEST:
            key = (s.height, s.round, s.step)
            if key != node.progress:
                node.progress, self.last_progress = key, self.net.now
                self.check.progress(node, s)

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
            while r.events < cfg.max_events and r.failed_check is None:
                popped = net.pop()
                if popped is None or popped[0] > deadline:
                    break
                if popped[0] - max(self.last_progress, plan.gst_ms) > cfg.stall_ms:
                    r.notes.append(f"no honest node moved for {cfg.stall_ms} ms after GST")
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
