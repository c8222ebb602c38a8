"""The validator runtime in process (no Ray): four `ValidatorNode`s in one event loop commit
transfers, a stopped node misses heights, and a node reopened from its directory catches up to the
same blocks and state roots; a subscriber sees every commit in order; the stored proposer schedule
matches a full replay, also after a crash before its write, and a stale one is not trusted; and the
wire codec is strict."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fedray.consensus.messages import VoteMessage
from fedray.consensus.proposer import ProposerSchedule, encode_schedule
from fedray.core.block import PREVOTE, Vote
from fedray.core.contracts.accounts import Transfer
from fedray.core.devchain import dev_genesis
from fedray.core.encoding import encode
from fedray.core.tx import make_tx
from fedray.errors import EncodingError
from fedray.node.app import LedgerApp
from fedray.runtime.node_settings import prepare_node_dir
from fedray.runtime.recovery import SCHEDULE_KEY, load_schedule, replay_schedule
from fedray.runtime.transport import decode_message, encode_message
from fedray.runtime.validator import ValidatorNode

CHAIN = "fedray-local"
FAST = {
    "timeout_propose_s": 0.4,
    "timeout_vote_s": 0.15,
    "timeout_delta_s": 0.1,
    "block_interval_s": 0.01,
    "gossip_s": 0.1,
}


async def _wait_all(nodes: list[ValidatorNode], height: int, timeout_s: float = 20.0) -> None:
    answers = await asyncio.gather(
        *(n.wait_for_height(n.caps.operator, height, timeout_s) for n in nodes)
    )
    assert all(a.height >= height for a in answers), [a.height for a in answers]


async def _reconnect(nodes: list[ValidatorNode]) -> None:
    for n in nodes:
        await n.connect(n.caps.operator, nodes)


class Subscriber:
    def __init__(self) -> None:
        self.heights: list[int] = []

    async def on_block(self, event: dict[str, object]) -> None:
        self.heights.append(int(event["height"]))  # type: ignore[call-overload]


async def _scenario(tmp: Path) -> None:
    genesis, vkeys, akeys = dev_genesis(CHAIN, n_validators=4, n_accounts=2)
    raw_genesis = encode(genesis.to_canonical())
    dirs = [prepare_node_dir(tmp / f"v{i}", k) for i, k in enumerate(vkeys)]
    nodes = [ValidatorNode(str(d), raw_genesis, **FAST) for d in dirs]
    await _reconnect(nodes)
    sub = Subscriber()
    await nodes[0].subscribe(nodes[0].caps.operator, sub)
    for n in nodes:
        await n.start(n.caps.operator)

    txs = [make_tx(akeys[0], CHAIN, i, Transfer(akeys[1].public_key, 10 + i)).raw for i in range(3)]
    assert await nodes[1].submit_txs(txs) == []
    rejected = await nodes[1].submit_txs([txs[0][:-1], txs[0]])
    assert [r["index"] for r in rejected] == [0]  # a truncated tx is refused, the duplicate is not
    await _wait_all(nodes, 3)

    await nodes[3].shutdown(nodes[3].caps.operator)  # a crash, as far as its peers can tell
    live = nodes[:3]
    target = max(n.app.height for n in live) + 3
    await _wait_all(live, target)
    assert nodes[3].app.height < target

    nodes[3] = ValidatorNode(str(dirs[3]), raw_genesis, **FAST)  # reopened from its directory
    await _reconnect(nodes)
    await nodes[3].start(nodes[3].caps.operator)
    target += 2
    await _wait_all(nodes, target)

    assert nodes[0].app.state.account(akeys[1].public_key).balance == 1_000_000 + 10 + 11 + 12
    # Blocks are byte-identical; certificates may hold different 2/3 subsets of precommits.
    blocks = [[b for b, _ in await n.committed_range(1, target)] for n in nodes]
    assert all(b == blocks[0] for b in blocks) and len(blocks[0]) == target
    roots = {n.app.store.get(target).state_root for n in nodes}
    assert len(roots) == 1
    assert [(await n.status()).failed for n in nodes] == [None] * 4
    for _ in range(100):  # the subscriber's queue drains in its own task
        if len(sub.heights) >= target:
            break
        await asyncio.sleep(0.05)
    assert sub.heights == list(range(1, len(sub.heights) + 1)) and len(sub.heights) >= target
    for n in nodes:
        await n.shutdown(n.caps.operator)


def _check_schedule_recovery(node_dir: Path) -> None:
    """The stored schedule is the one a full replay gives; a crash right before the schedule write
    (tagged with the tip) is advanced by one height; a missing one is replayed."""
    genesis, _, _ = dev_genesis(CHAIN, n_validators=4, n_accounts=2)
    app = LedgerApp(node_dir, genesis)
    try:
        tip, vs = app.height, app.validators(app.height + 1)
        expected = ProposerSchedule.replay([vs] * (tip + 1))  # the set never changes here
        assert load_schedule(app) == expected == replay_schedule(app)
        app.store.set_meta(SCHEDULE_KEY, encode_schedule(tip, ProposerSchedule.replay([vs] * tip)))
        assert load_schedule(app) == expected
        # A stale tag is not trusted: its schedule (deliberately wrong here) must not be used.
        other = next(k for k, _, _ in expected.members if k != expected.proposer0)
        wrong = ProposerSchedule(tuple((k, p, 0) for k, p, _ in expected.members), other)
        assert wrong != expected and wrong.proposer(0) != expected.proposer(0)
        app.store.set_meta(SCHEDULE_KEY, encode_schedule(tip - 3, wrong))
        assert load_schedule(app) == expected
        app.store.set_meta(SCHEDULE_KEY, encode_schedule(tip + 1, wrong))  # current: trusted as is
        assert load_schedule(app) == wrong
    finally:
        app.close()


def test_four_local_validators_commit_and_restart_catches_up(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))
    _check_schedule_recovery(tmp_path / "v3")


def test_wire_codec_round_trip_and_strictness() -> None:
    _, vkeys, _ = dev_genesis(CHAIN, n_validators=1, n_accounts=0)
    vote = Vote(PREVOTE, 3, 1, b"\x01" * 32, vkeys[0].public_key).signed(vkeys[0], CHAIN)
    raw = encode_message(VoteMessage(vote))
    assert decode_message(raw) == VoteMessage(vote)
    for bad in (raw[:-1], raw + b"\x00", encode([7, vote.to_canonical()]), encode([1]), b""):
        with pytest.raises(EncodingError):
            decode_message(bad)
