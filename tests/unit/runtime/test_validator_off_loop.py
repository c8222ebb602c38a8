"""A proposal is checked off the validator's event loop: while one node's check of a block (where a
round-closing block aggregates) is held up, that node keeps handling votes and timeouts, decides
the heights its peers certify and stays in step, and the late answer does no harm; and a propose
timeout waits for a check in flight instead of having the node prevote nil."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from fedray.core.devchain import dev_genesis
from fedray.core.encoding import encode
from fedray.runtime.node_settings import prepare_node_dir
from fedray.runtime.validator import ValidatorNode
from tests.unit.runtime.node_harness import FAST, until

CHAIN = "fedray-off-loop"
GATE_S = 20.0  # a safety valve: on the loop, a held check would block everything this long


class HeldCheck:
    """The node's real `process_proposal`, its first call held until `release` (or GATE_S)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.entered = threading.Event()
        self.release = threading.Event()
        self.waited_out = False

    def __call__(self, block: Any) -> bool:
        if not self.entered.is_set():
            self.entered.set()
            self.waited_out = not self.release.wait(GATE_S)
        return bool(self.real(block))


async def _scenario(tmp: Path) -> None:
    genesis, vkeys, _ = dev_genesis(CHAIN, n_validators=4, n_accounts=1)
    raw = encode(genesis.to_canonical())
    nodes = [
        ValidatorNode(str(prepare_node_dir(tmp / f"v{i}", k)), raw, **FAST)
        for i, k in enumerate(vkeys)
    ]
    slow = nodes[3]
    held = HeldCheck(slow.app.process_proposal)
    slow.app.process_proposal = held  # type: ignore[method-assign]
    for n in nodes:
        await n.connect(n.caps.operator, nodes)
    for n in nodes:
        await n.start(n.caps.operator)
    try:

        async def entered() -> bool:
            return held.entered.is_set()

        await until(entered)
        start = slow.app.height

        async def moved_on() -> bool:
            return slow.app.height >= start + 3

        await until(moved_on)  # the loop ran on: votes in, heights decided, while the check waits
        assert not held.release.is_set() and not held.waited_out
        held.release.set()

        async def all_at() -> bool:
            return min(n.app.height for n in nodes) >= start + 4

        await until(all_at)
        roots = {n.app.store.get(start + 4).state_root for n in nodes}
        assert len(roots) == 1 and not slow.failed
    finally:
        held.release.set()
        for n in nodes:
            await n.shutdown(n.caps.operator)


def test_a_held_check_does_not_stall_the_node(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))


class HeldAt:
    """The node's real `process_proposal`, its checks of blocks at `height` held until `release`."""

    def __init__(self, real: Any, height: int, release: threading.Event) -> None:
        self.real, self.height, self.release = real, height, release
        self.entered = threading.Event()

    def __call__(self, block: Any) -> bool:
        if block.height == self.height:
            self.entered.set()
            self.release.wait(GATE_S)
        return bool(self.real(block))


async def _slow_checks(tmp: Path) -> None:
    genesis, vkeys, _ = dev_genesis(CHAIN, n_validators=4, n_accounts=1)
    raw = encode(genesis.to_canonical())
    nodes = [
        ValidatorNode(str(prepare_node_dir(tmp / f"v{i}", k)), raw, **FAST)
        for i, k in enumerate(vkeys)
    ]
    release = threading.Event()
    held = [HeldAt(n.app.process_proposal, 3, release) for n in nodes]
    for n, h in zip(nodes, held, strict=True):
        n.app.process_proposal = h  # type: ignore[method-assign]
        await n.connect(n.caps.operator, nodes)
    for n in nodes:
        await n.start(n.caps.operator)
    try:

        async def all_checking() -> bool:  # the proposer does not check its own block
            return sum(h.entered.is_set() for h in held) >= 3

        await until(all_checking)
        await asyncio.sleep(4 * FAST["timeout_propose_s"])  # every propose timeout has fired
        release.set()

        async def decided() -> bool:
            return min(n.app.height for n in nodes) >= 3

        await until(decided)
        rounds = {n.app.store.get(3).cert().round for n in nodes}
        assert rounds == {0}  # the slow block was prevoted, not timed out
    finally:
        release.set()
        for n in nodes:
            await n.shutdown(n.caps.operator)


def test_a_propose_timeout_waits_for_a_check_in_flight(tmp_path: Path) -> None:
    asyncio.run(_slow_checks(tmp_path))
