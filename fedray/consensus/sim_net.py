"""The simulator's world: a seeded fault plan and a virtual-time network.

A `FaultPlan` is drawn per schedule from one `random.Random`: message delays (which reorder), drops
and duplicates, partitions that heal, crashes with restarts, and per-node clock skews; everything
before GST (global stabilization time) is adversarial, everything after is synchronous: no drops,
no partitions, delays at most `max_delay_after_gst_ms`, every node up. Twins are placed on opposite
sides of the first partition when the plan asks for it, which is how a fork is made possible.

Besides partitions in time, the plan holds partitions in protocol phases (`PhaseFault`, as ByzzFuzz
injects them): before GST, messages tagged with one (height, round, kind) do not cross a partition,
e.g. the precommits of round 0 at height 2 do not reach one node. Half of the faults that cut one
node off are one-way: what it sends in that phase is lost, what it is sent arrives (a node whose
precommit no one gets, while it gets everyone's and moves on alone). A handful of these reaches the
corner cases (a lone decider, a lone node in a later round) that random drops reach only rarely.

`Network` is an event heap in virtual milliseconds; nothing here knows consensus (a message's tag
is three integers the caller chooses).

Deliberately ignored: bandwidth, message sizes, per-link asymmetry.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Partition:
    start_ms: int
    end_ms: int
    side: tuple[int, ...]  # node -> side index

    def separates(self, a: int, b: int, now: int) -> bool:
        return self.start_ms <= now < self.end_ms and self.side[a] != self.side[b]


@dataclass(frozen=True)
class PhaseFault:
    height: int
    round: int
    kind: int  # the tag's kind, or ANY_KIND
    side: tuple[int, ...]  # node -> side index
    outgoing: bool = False  # one-way: only side 1's messages to side 0 are lost

    def separates(self, a: int, b: int, tag: tuple[int, int, int]) -> bool:
        height, round_, kind = tag
        if (height, round_) != (self.height, self.round) or self.kind not in (ANY_KIND, kind):
            return False
        if self.outgoing:
            return self.side[a] == 1 and self.side[b] == 0
        return self.side[a] != self.side[b]


ANY_KIND = -1


@dataclass(frozen=True)
class FaultPlan:
    gst_ms: int
    drop: float
    duplicate: float
    max_delay_ms: int  # before GST
    max_delay_after_gst_ms: int
    partitions: tuple[Partition, ...]
    crashes: tuple[tuple[int, int, int], ...]  # (node, crash at, restart at)
    skews_ms: tuple[int, ...]
    phase_faults: tuple[PhaseFault, ...] = ()


def draw_plan(
    rng: random.Random,
    n_nodes: int,
    twin_pairs: list[tuple[int, int]],
    max_gst_ms: int = 3000,
    max_partitions: int = 2,
    max_crashes: int = 1,
    crashable: list[int] | None = None,
    max_phase_faults: int = 3,
    heights: int = 3,
    kinds: int = 3,
) -> FaultPlan:
    """A random adversarial prefix followed by a synchronous suffix."""
    gst = 0 if rng.random() < 0.1 else rng.randint(200, max_gst_ms)
    partitions: list[Partition] = []
    if twin_pairs and rng.random() < 0.8:  # split the twins from the start
        partitions.append(
            Partition(0, rng.randint(1000, max(2000, gst)), _twin_sides(rng, n_nodes, twin_pairs))
        )
    for _ in range(rng.randint(0, max_partitions)):
        start = rng.randint(0, max(gst, 1))
        end = rng.randint(start + 1, max(gst, start + 1) + 500)
        side = tuple(rng.randint(0, 1) for _ in range(n_nodes))
        partitions.append(Partition(start, end, side))
    crashes = []
    candidates = list(range(n_nodes)) if crashable is None else crashable
    for node in rng.sample(candidates, min(len(candidates), rng.randint(0, max_crashes))):
        at = rng.randint(0, max(gst, 1))
        crashes.append((node, at, at + rng.randint(50, 1500)))
    gst = max([gst] + [p.end_ms for p in partitions] + [r for _, _, r in crashes])
    phase_faults = []
    for _ in range(rng.randint(0, max_phase_faults) if gst else 0):
        outgoing = False
        if rng.random() < 0.5:  # one node alone, half the time on its sending side only
            lone = rng.randrange(n_nodes)
            side = tuple(int(i == lone) for i in range(n_nodes))
            outgoing = rng.random() < 0.5
        else:
            side = tuple(rng.randint(0, 1) for _ in range(n_nodes))
        kind = rng.choice([ANY_KIND, *range(kinds)])
        phase_faults.append(
            PhaseFault(rng.randint(1, heights), rng.randint(0, 2), kind, side, outgoing)
        )
    return FaultPlan(
        gst_ms=gst,
        drop=rng.choice([0.0, 0.05, 0.2, 0.5]),
        duplicate=rng.choice([0.0, 0.1, 0.3]),
        max_delay_ms=rng.choice([5, 40, 200, 800]),
        max_delay_after_gst_ms=40,
        partitions=tuple(partitions),
        crashes=tuple(sorted(crashes, key=lambda c: c[1])),
        skews_ms=tuple(rng.randint(0, 50) for _ in range(n_nodes)),
        phase_faults=tuple(phase_faults),
    )


def _twin_sides(rng: random.Random, n: int, twin_pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    side = [rng.randint(0, 1) for _ in range(n)]
    for a, b in twin_pairs:
        side[a], side[b] = 0, 1
    return tuple(side)


class Network:
    """Virtual time and an event queue; `send` applies the plan's faults to one message."""

    def __init__(self, rng: random.Random, plan: FaultPlan) -> None:
        self.rng, self.plan = rng, plan
        self.now = 0
        self._queue: list[tuple[int, int, Any]] = []
        self._seq = 0
        self.sent = self.dropped = 0

    def at(self, time_ms: int, item: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time_ms, self._seq, item))

    def pop(self) -> tuple[int, Any] | None:
        if not self._queue:
            return None
        time_ms, _, item = heapq.heappop(self._queue)
        self.now = time_ms
        return time_ms, item

    def send(self, src: int, dst: int, item: Any, tag: tuple[int, int, int] | None = None) -> None:
        """Schedule delivery of `item` (the caller's delivery record) unless the link loses it;
        `tag` is the message's (height, round, kind) for phase faults."""
        self.sent += 1
        plan, now, rng = self.plan, self.now, self.rng
        if now < plan.gst_ms:
            if (
                any(p.separates(src, dst, now) for p in plan.partitions)
                or (tag is not None and any(f.separates(src, dst, tag) for f in plan.phase_faults))
                or rng.random() < plan.drop
            ):
                self.dropped += 1
                return
            copies = 2 if rng.random() < plan.duplicate else 1
            for _ in range(copies):
                self.at(now + rng.randint(1, plan.max_delay_ms), item)
        else:
            self.at(now + rng.randint(1, plan.max_delay_after_gst_ms), item)
