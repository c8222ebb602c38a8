"""A payload a validator lacks is retried, never fatal (finding 6), in process (no Ray):

- a proposal whose update payload is pinned nowhere yet gets no "invalid" verdict (which the engine
  would keep for the whole height, refusing every re-proposal of the block); once the payload is
  here, the same block is judged valid;
- a validator catching up on a block whose payloads no peer can hand over does not execute it (that
  raised and stopped the node): it waits, and catches up once a peer has them again."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from node_harness import FAST, PRESET, until

from fedray.config import load_config
from fedray.consensus.messages import ProposalMessage
from fedray.core.beacon import prove_next
from fedray.core.block import Proposal, make_block, proposal_time
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.encoding import encode
from fedray.federation.clients import ClientPool, Submission
from fedray.federation.plan import Federation
from fedray.node.app import LedgerApp
from fedray.runtime.node_settings import prepare_node_dir
from fedray.runtime.transport import encode_message
from fedray.runtime.validator import ValidatorNode
from fedray.storage.tensors import tensors_digest


class Net:
    """Four in-process validators of a minimal federation, started, with round 0 open."""

    def __init__(self, tmp: Path) -> None:
        self.cfg = load_config(str(PRESET), ["rounds=2", "chain.round_deadline_blocks=1000"])
        self.fed = Federation(self.cfg)
        self.keys = [key_from_seed(f"missing-payloads/{i}".encode()) for i in range(4)]
        self.initial = self.fed.initial_model()
        genesis = self.fed.genesis([k.public_key for k in self.keys], self.initial)
        self.raw_genesis = encode(genesis.to_canonical())
        self.dirs = [prepare_node_dir(tmp / f"v{i}", k) for i, k in enumerate(self.keys)]
        self.nodes = [ValidatorNode(str(d), self.raw_genesis, **FAST) for d in self.dirs]

    async def start(self) -> None:
        for n in self.nodes:
            await n.put_blob(n.caps.operator, self.initial)
            await n.connect(n.caps.operator, self.nodes)
        for n in self.nodes:
            await n.start(n.caps.operator)

        async def round_open() -> bool:
            return bool((await self.nodes[0].round_info()).open)

        await until(round_open)

    async def updates(self) -> list[Submission]:
        info = await self.nodes[0].round_info()
        pool = ClientPool(self.cfg, list(range(self.cfg.clients)))
        out = pool.train_round(0, self.initial, info.global_hash, list(info.selected), {}, 1, 0.05)
        return out.submissions

    def key_of(self, public: bytes) -> PrivateKey:
        return next(k for k in self.keys if k.public_key == public)

    async def stop(self) -> None:
        for n in self.nodes:
            await n.shutdown(n.caps.operator)


async def _reproposal(tmp: Path) -> None:
    net = Net(tmp)
    await net.start()
    subs = await net.updates()
    for n in net.nodes[:3]:
        await n.shutdown(n.caps.operator)  # node 3 is left alone at its height
    node = net.nodes[3]
    engine = node.driver.state  # type: ignore[union-attr]
    app, s = node.app, node.app.state
    height = s.height + 1
    round_ = next(
        r
        for r in range(engine.round + 1, engine.round + 4)
        if engine.schedule.proposer(r) != node.key.public_key
    )
    proposer = net.key_of(engine.schedule.proposer(round_))
    block = make_block(
        s.chain_id,
        height,
        proposal_time(s.last_block_time, s.params.max_block_time_step_ms, node.now_ms()),
        s.last_block_hash,
        s.root(),
        proposer.public_key,
        s.validators,
        [subs[0].tx],  # a selected client's update, its payload pinned nowhere
        app.last_commit,
        (),
        prove_next(proposer, s),
    )
    proposal = Proposal(height, round_, -1, block.hash, proposer.public_key).signed(
        proposer, s.chain_id
    )
    await node.receive([encode_message(ProposalMessage(proposal, block))])

    async def checking() -> bool:
        return block.hash in node.driver.state.checking  # type: ignore[union-attr]

    await until(checking)
    await asyncio.sleep(10 * FAST["gossip_s"])  # several fetch attempts find it nowhere
    assert node.driver.state.validity.get(block.hash) is None  # type: ignore[union-attr]
    assert node.failed is None
    node.app.blobs.put(subs[0].payload)  # it arrives (a peer's answer, or the ingress)

    async def judged_valid() -> bool:
        return node.driver.state.validity.get(block.hash) is True  # type: ignore[union-attr]

    await until(judged_valid)
    await node.shutdown(node.caps.operator)


async def _catch_up(tmp: Path) -> None:
    net = Net(tmp)
    await net.start()
    nodes = net.nodes
    await nodes[2].shutdown(nodes[2].caps.operator)  # misses the payloads and the round's close
    subs = await net.updates()
    for n in nodes[:2]:
        for s in subs:
            n.app.blobs.put(s.payload)
        assert await n.submit_txs([s.tx for s in subs]) == []

    async def round_closed() -> bool:
        return all([(await n.round_info()).results for n in (nodes[0], nodes[1], nodes[3])])

    await until(round_closed)
    digests = {tensors_digest(s.payload) for s in subs}
    tip = nodes[0].app.height
    gap = min(  # the first block that needs one of the payloads
        b.height
        for b in nodes[0].app.store.iter_blocks(1, tip)
        if any(LedgerApp.needed_payload(raw) in digests for raw in b.block().txs)
    )
    # No peer can hand the payloads over any more (pruned, lost): keep node 0's aside.
    aside = tmp / "aside"
    for d in digests:
        for i in (0, 1, 3):
            path = nodes[i].app.blobs.path(d)
            if i == 0:
                aside.mkdir(exist_ok=True)
                shutil.copy(path, aside / path.name)
            path.unlink()

    nodes[2] = ValidatorNode(str(net.dirs[2]), net.raw_genesis, **FAST)
    for n in nodes:
        await n.connect(n.caps.operator, nodes)
    await nodes[2].start(nodes[2].caps.operator)

    async def caught_up_to_the_gap() -> bool:
        return nodes[2].app.height >= gap - 1

    await until(caught_up_to_the_gap)
    await asyncio.sleep(20 * FAST["gossip_s"])  # several catch-up passes find no payload
    assert nodes[2].failed is None, nodes[2].failed
    assert nodes[2].app.height == gap - 1  # it did not execute the block without them
    for saved in aside.iterdir():  # a peer has them again
        shutil.copy(saved, nodes[0].app.blobs.path(bytes.fromhex(saved.stem)))
    target = nodes[0].app.height + 2
    answers = await asyncio.gather(*(n.wait_for_height(n.caps.operator, target, 30) for n in nodes))
    assert all(a.height >= target and a.failed is None for a in answers)
    assert len({n.app.store.get(target).state_root for n in nodes}) == 1
    await net.stop()


def test_a_proposal_missing_a_payload_is_judged_once_the_payload_arrives(tmp_path: Path) -> None:
    asyncio.run(_reproposal(tmp_path))


def test_catch_up_waits_for_a_missing_payload_instead_of_stopping(tmp_path: Path) -> None:
    asyncio.run(_catch_up(tmp_path))
