"""Update payloads a validator lacks, in process (no Ray): with one validator down, a live one that
never received the round's payloads must fetch them from a peer before it can prevote (else the
three live validators have no quorum), and the stopped one, restarted after the round closed, must
fetch them during catch-up to replay the aggregation. All end on the same blocks and state root."""

from __future__ import annotations

import asyncio
from pathlib import Path

from node_harness import FAST, open_round, until

from fedray.federation.clients import ClientPool
from fedray.runtime.validator import ValidatorNode
from fedray.storage.tensors import tensors_digest


async def _scenario(tmp: Path) -> None:
    net = await open_round(tmp, "payload-test")
    cfg, initial, nodes = net.cfg, net.initial, net.nodes
    dirs, raw_genesis = net.dirs, net.raw_genesis
    await nodes[2].shutdown(nodes[2].caps.operator)  # misses the payloads and the round's close
    info = await nodes[0].round_info()
    subs = (
        ClientPool(cfg, list(range(cfg.clients)))
        .train_round(0, initial, info.global_hash, list(info.selected), {}, 1, 0.05)
        .submissions
    )
    for n in nodes[:2]:  # node 3 is live but never gets the payloads directly
        for s in subs:
            n.app.blobs.put(s.payload)  # as its ingress pins them
        assert await n.submit_txs([s.tx for s in subs]) == []
    digests = [tensors_digest(s.payload) for s in subs]

    async def round_closed() -> bool:
        infos = [await n.round_info() for n in (nodes[0], nodes[1], nodes[3])]
        return all(i.results for i in infos)

    await until(round_closed)
    result = (await nodes[3].round_info()).results[0]
    assert result.included == len(subs) and result.reason == "quota"
    assert all(nodes[3].app.blobs.has(d) for d in digests)  # fetched to check the proposal

    nodes[2] = ValidatorNode(str(dirs[2]), raw_genesis, **FAST)
    for n in nodes:
        await n.connect(n.caps.operator, nodes)
    await nodes[2].start(nodes[2].caps.operator)
    target = nodes[0].app.height + 2
    answers = await asyncio.gather(*(n.wait_for_height(n.caps.operator, target, 30) for n in nodes))
    assert all(a.height >= target and a.failed is None for a in answers)
    roots = {n.app.store.get(target).state_root for n in nodes}
    hashes = {n.app.store.get(target).hash for n in nodes}
    assert len(roots) == 1 and len(hashes) == 1
    global_after = result.global_after
    assert all(n.app.blobs.has(global_after) for n in nodes)  # every one aggregated it itself
    assert all(nodes[2].app.blobs.has(d) for d in digests)  # fetched during catch-up
    for n in nodes:
        await n.shutdown(n.caps.operator)


def test_missing_payloads_are_fetched_for_proposals_and_catch_up(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))
