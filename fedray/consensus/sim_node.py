"""A simulated machine and its honest link to the simulated world.

`SimNode` holds what survives a crash (the application, the signer store, the proposer schedule of
its next height) and, while it is up, its `Driver`. `NodeTransport` is the honest node's link for one
incarnation: it broadcasts through the `World`, asks it for timers and reads its clock.

`World` is the small protocol the transports need of a simulation (send, timers, clocks, the nodes
and the chain); `Simulation` implements it, and neither this module nor `sim_byzantine` imports it.

Deliberately ignored: the network's faults (`sim_net`) and the adversary (`sim_byzantine`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fedray.consensus.driver import Driver, MemorySignerStore
from fedray.consensus.messages import Message, ScheduleTimeout
from fedray.consensus.proposer import ProposerSchedule
from fedray.consensus.sim_app import SimApplication, SimChain
from fedray.consensus.sync import SyncBatch
from fedray.core.crypto import PrivateKey

HONEST, BYZANTINE, TWIN = "honest", "byzantine", "twin"

Wire = Message | SyncBatch


class SimNode:
    """A simulated machine: its disk (app, signer store, schedule) and, when up, its driver."""

    def __init__(
        self,
        index: int,
        key: PrivateKey,
        kind: str,
        app: SimApplication,
        schedule: ProposerSchedule,
        skew: int,
        behaviours: frozenset[str] = frozenset(),
    ) -> None:
        self.id, self.key, self.kind, self.skew = index, key, kind, skew
        self.app = app
        self.store = MemorySignerStore()
        self.schedule = schedule  # of height app.height + 1
        self.driver: Driver | None = None
        self.incarnation = 0
        self.last_gossip_height: int | None = None
        self.progress: tuple[int, int, int] | None = None  # (height, round, step) last seen
        self.behaviours = behaviours  # the adversary's, for a Byzantine node

    @property
    def honest(self) -> bool:
        return self.kind == HONEST


@dataclass(frozen=True)
class Scene:
    """What the adversary stages in one (height, round) before GST, around one honest `favourite`:
    `split_proposal` when a faulty node proposes this round (the favourite alone gets its block,
    the others another one), `split_decision` when a faulty node proposes the next round (the
    favourite's precommits reach no one, and a faulty precommit for the value reaches only it)."""

    kind: str
    favourite: int


SPLIT_PROPOSAL, SPLIT_DECISION = "split_proposal", "split_decision"


class World(Protocol):
    @property
    def rng(self) -> random.Random: ...

    @property
    def nodes(self) -> Sequence[SimNode]: ...

    @property
    def chain(self) -> SimChain: ...

    def send(self, src: SimNode, dst: int, message: Wire) -> None: ...

    def timer(self, node: SimNode, incarnation: int, timeout: ScheduleTimeout) -> None: ...

    def now_ms(self, node: SimNode) -> int: ...

    def scene(self, height: int, round_: int) -> Scene | None:
        """The adversary's plan for (height, round), if any (see `sim_byzantine.draw_scene`)."""
        ...


class NodeTransport:
    """An honest node's link to the simulated world, valid for one incarnation of the node."""

    def __init__(self, world: World, node: SimNode, incarnation: int) -> None:
        self.world, self.node, self.incarnation = world, node, incarnation

    @property
    def live(self) -> bool:
        return self.node.driver is not None and self.node.incarnation == self.incarnation

    def broadcast(self, message: Message) -> None:
        if self.live:
            for peer in self.world.nodes:
                if peer is not self.node:
                    self.world.send(self.node, peer.id, message)

    def schedule(self, timeout: ScheduleTimeout) -> None:
        self.world.timer(self.node, self.incarnation, timeout)

    def now_ms(self) -> int:
        return self.world.now_ms(self.node)
