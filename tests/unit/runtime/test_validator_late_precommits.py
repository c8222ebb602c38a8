"""Issue 10, finding 9, on the validator runtime in process (no Ray): four `ValidatorNode`s, one of
which is always the last to precommit (everything it sends leaves 200 ms late, so the three others
decide without it). With the pause after a decision (`timeout_commit_s`, here far longer than that
lag) every block's `last_commit` still names all four: the validator passes the setting to its
engine and the grown certificate to its ledger app. The jailing that follows from `last_commit` is
tested deterministically in tests/unit/node/test_late_precommits.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fedray.core.devchain import dev_genesis
from fedray.core.encoding import encode
from fedray.runtime.node_settings import NodeSettings, prepare_node_dir
from fedray.runtime.validator import ValidatorNode

CHAIN = "fedray-local"
LAG_S = 0.2
SETTINGS = {
    "timeout_propose_s": 3.0,
    "timeout_vote_s": 0.5,
    "timeout_delta_s": 0.2,
    "timeout_commit_s": 1.0,
    "block_interval_s": 0.01,
    "gossip_s": 0.2,
}
HEIGHTS = 6


class LaggingNode(ValidatorNode):
    """A validator whose outgoing messages all leave `LAG_S` late."""

    def broadcast(self, message: Any) -> None:
        asyncio.get_running_loop().call_later(LAG_S, ValidatorNode.broadcast, self, message)


async def _scenario(tmp: Path) -> list[int]:
    genesis, vkeys, _ = dev_genesis(CHAIN, n_validators=4, n_accounts=1)
    raw = encode(genesis.to_canonical())
    dirs = [prepare_node_dir(tmp / f"v{i}", k) for i, k in enumerate(vkeys)]
    nodes = [ValidatorNode(str(d), raw, **SETTINGS) for d in dirs[:3]]
    nodes.append(LaggingNode(str(dirs[3]), raw, **SETTINGS))
    for n in nodes:
        await n.connect(n.caps.operator, nodes)
    for n in nodes:
        await n.start(n.caps.operator)
    try:
        answers = await asyncio.gather(
            *(n.wait_for_height(n.caps.operator, HEIGHTS, 30.0) for n in nodes[:3])
        )
        assert all(a.height >= HEIGHTS for a in answers)
        blocks = nodes[0].app.store.iter_blocks(2, HEIGHTS)
        return [len(b.block().last_commit.signers()) for b in blocks]  # type: ignore[union-attr]
    finally:
        for n in nodes:
            await n.shutdown(n.caps.operator)


def test_the_validator_proposes_with_the_precommits_that_came_late(tmp_path: Path) -> None:
    assert NodeSettings(**SETTINGS).timeouts().commit_ms == 1000
    assert asyncio.run(_scenario(tmp_path)) == [4] * (HEIGHTS - 1)
