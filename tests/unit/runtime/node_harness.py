"""What the in-process validator tests share: fast timeouts for `ValidatorNode`s in one event
loop, the minimal preset, and waiting for a condition."""

from __future__ import annotations

import asyncio
from pathlib import Path

PRESET = Path(__file__).resolve().parents[3] / "fedray" / "conf" / "preset" / "minimal.yaml"
FAST = {
    "timeout_propose_s": 0.4,
    "timeout_vote_s": 0.15,
    "timeout_delta_s": 0.1,
    "block_interval_s": 0.02,
    "gossip_s": 0.1,
}


async def until(predicate: object, timeout_s: float = 30.0) -> None:
    """Await `predicate()` until it is true; fail the test after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
