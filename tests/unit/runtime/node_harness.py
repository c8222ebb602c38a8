"""What the in-process validator tests share: fast timeouts for `ValidatorNode`s in one event
loop, the minimal preset, waiting for a condition, and four validators with their first round
open."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass
class RoundNet:
    """Four validators in this event loop on the minimal preset, their first round open."""

    cfg: Any
    fed: Any
    initial: dict[str, Any]
    raw_genesis: bytes
    keys: list[Any]
    dirs: list[Path]
    nodes: list[Any]


async def open_round(tmp: Path, seed: str, hosted: bool = False) -> RoundNet:
    """Start four `ValidatorNode`s (keys from `seed`; each hosting its ingress when `hosted`) and
    wait until their first round is open."""
    from fedray.config import load_config
    from fedray.core.crypto import key_from_seed
    from fedray.core.encoding import encode
    from fedray.federation.plan import Federation
    from fedray.runtime.node_settings import prepare_node_dir
    from fedray.runtime.validator import ValidatorNode

    cfg = load_config(str(PRESET), ["rounds=2", "chain.round_deadline_blocks=1000"])
    fed = Federation(cfg)
    keys = [key_from_seed(f"{seed}/{i}".encode()) for i in range(4)]
    initial = fed.initial_model()
    raw_genesis = encode(fed.genesis([k.public_key for k in keys], initial).to_canonical())
    dirs = [prepare_node_dir(tmp / f"v{i}", k) for i, k in enumerate(keys)]
    layout = {k: (a.dtype.str, tuple(a.shape)) for k, a in initial.items()}
    hosting = {"ingress_layout": layout} if hosted else {}
    nodes = [ValidatorNode(str(d), raw_genesis, **hosting, **FAST) for d in dirs]
    for n in nodes:
        await n.put_blob(n.caps.operator, initial)
        await n.connect(n.caps.operator, nodes)
    for n in nodes:
        await n.start(n.caps.operator)

    async def round_open() -> bool:
        return bool((await nodes[0].round_info()).open)

    await until(round_open)
    return RoundNet(cfg, fed, initial, raw_genesis, keys, dirs, nodes)
