"""Issue 10, finding 9 (downtime): seven ledger apps, each run by the real engine through the
reference `Driver`, over a deterministic virtual-time network. Five validators are fast (1 ms links),
one is always the last to precommit (every message it sends takes `slow_ms`), one is offline. Five
fast ones make a quorum, so every decision is taken without the slow validator's precommit.

With the pause after a decision (`commit_ms`) longer than the slow validator's lag, the next
proposer's `last_commit` carries its late precommit, and the slashing contract, which reads those
signers into each validator's signing window, never jails it; the offline validator is still jailed.
Without the pause, or with a lag beyond it, the slow validator looks offline and is jailed too
(without a pause even a fast one can be: the certificate holds the first quorum the proposer saw)."""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Any

import pytest

from fedray.consensus.driver import Driver, MemorySignerStore
from fedray.consensus.messages import Message, ScheduleTimeout, TimeoutFired
from fedray.consensus.proposer import ProposerSchedule
from fedray.consensus.sim_app import GENESIS_TIME, node_keys, sim_genesis
from fedray.consensus.state import EngineConfig, TimeoutConfig
from fedray.core.state import Params
from fedray.node.app import LedgerApp

CHAIN = "fedray-late-precommits"
N, SLOW, OFFLINE = 7, 5, 6
HEIGHTS = 10
# Judged over the last 4 blocks: fewer than 2 signed -> 1% burnt, jailed for 100 blocks.
PARAMS = Params(
    min_stake_validator=1000,
    downtime_window=4,
    downtime_min_signed_bps=5_000,
    downtime_jail_blocks=100,
)


class Network:
    """Virtual milliseconds; a node's message reaches each live peer after that node's delay."""

    def __init__(self, delays_ms: list[int]) -> None:
        self.delays_ms = delays_ms
        self.now = 0
        self.queue: list[tuple[int, int, int, Any]] = []
        self.seq = 0
        self.drivers: dict[int, Driver] = {}

    def at(self, time_ms: int, node: int, event: Any) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (time_ms, self.seq, node, event))

    def run_until(self, done: Any, limit_ms: int = 120_000) -> None:
        while self.queue and not done() and self.now < limit_ms:
            self.now, _, node, event = heapq.heappop(self.queue)
            self.drivers[node].handle(event)


class Link:
    """One node's `Transport`."""

    def __init__(self, net: Network, node: int) -> None:
        self.net, self.node = net, node

    def broadcast(self, message: Message) -> None:
        for peer in self.net.drivers:
            if peer != self.node:
                self.net.at(self.net.now + self.net.delays_ms[self.node], peer, message)

    def schedule(self, t: ScheduleTimeout) -> None:
        fired = TimeoutFired(t.height, t.round, t.step)
        self.net.at(self.net.now + t.duration_ms, self.node, fired)

    def now_ms(self) -> int:
        return GENESIS_TIME + self.net.now


def run_chain(tmp_path: Path, slow_ms: int, commit_ms: int) -> list[LedgerApp]:
    keys = node_keys(CHAIN, N)
    genesis = sim_genesis(CHAIN, keys, (10_000,) * N, PARAMS)
    apps = [LedgerApp(tmp_path / f"node{i}", genesis, keys=[keys[i]]) for i in range(N)]
    timeouts = TimeoutConfig(1000, 500, 500, 500, 500, 500, commit_ms=commit_ms)
    net = Network([slow_ms if i == SLOW else 1 for i in range(N)])
    schedule = ProposerSchedule.genesis(apps[0].validators(1))
    for i in range(N):
        if i != OFFLINE:
            config = EngineConfig(CHAIN, keys[i], timeouts)
            net.drivers[i] = Driver.open(
                config, apps[i], MemorySignerStore(), Link(net, i), schedule
            )
    for driver in net.drivers.values():
        driver.start()
    net.run_until(lambda: all(apps[i].height >= HEIGHTS for i in net.drivers))
    return apps


@pytest.mark.parametrize(
    ("slow_ms", "commit_ms", "slow_jailed"),
    [(30, 100, False), (30, 0, True), (300, 100, True)],
    ids=["late-within-the-pause", "no-pause", "later-than-the-pause"],
)
def test_a_validator_always_last_to_precommit_is_jailed_only_beyond_the_pause(
    tmp_path: Path, slow_ms: int, commit_ms: int, slow_jailed: bool
) -> None:
    apps = run_chain(tmp_path, slow_ms, commit_ms)
    try:
        keys = node_keys(CHAIN, N)
        live = [apps[i] for i in range(N) if i != OFFLINE]
        assert all(app.height >= HEIGHTS for app in live)
        state = live[0].state
        assert {app.state.root() for app in live} == {state.root()}
        jailed = {i for i in range(N) if state.account(keys[i].public_key).jailed}
        if slow_jailed:  # (without a pause, a fast validator that loses the race can be too)
            assert {OFFLINE, SLOW} <= jailed
        else:
            assert jailed == {OFFLINE}
        slow = keys[SLOW].public_key
        carried = [
            slow in b.block().last_commit.signers()  # type: ignore[union-attr]
            for b in live[0].store.iter_blocks(2, HEIGHTS)
        ]
        if not slow_jailed:  # its late precommit is in every block's last commit
            assert all(carried)
    finally:
        for app in apps:
            app.close()
