"""A validator hosting its ingress (`runtime.ingress=validator`), in process (no Ray): a pool's
batch through `submit` is judged item by item, pinned into the validator's own blob store and
admitted through its gated `admit_checked`; the round closes on those updates with every validator
on the same block. A forged item is refused at the door, a validator hosting no ingress says so,
and one that has shut down refuses batches with a typed error."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from node_harness import FAST, open_round, until

from fedray.federation.clients import ClientPool
from fedray.runtime.faces import NoIngressError
from fedray.runtime.ingress import IngressClosedError
from fedray.runtime.node_settings import prepare_node_dir
from fedray.runtime.validator import ValidatorNode
from fedray.storage.tensors import tensors_digest


async def _scenario(tmp: Path) -> None:
    net = await open_round(tmp, "hosted-ingress", hosted=True)
    cfg, initial, nodes = net.cfg, net.initial, net.nodes
    info = await nodes[0].round_info()
    subs = (
        ClientPool(cfg, list(range(cfg.clients)))
        .train_round(0, initial, info.global_hash, list(info.selected), {}, 1, 0.05)
        .submissions
    )
    batch = [(s.tx, s.payload, s.delivery_signature) for s in subs]
    forged_tx = subs[0].tx[:-1] + bytes([subs[0].tx[-1] ^ 1])  # its signature's last byte
    reports = await asyncio.gather(
        *(n.submit([*batch, (forged_tx, subs[0].payload, b"")]) for n in nodes)
    )
    assert all((r.admitted, r.rejected) == (len(subs), ("bad_signature",)) for r in reports)
    digests = [tensors_digest(s.payload) for s in subs]
    assert all(n.app.blobs.has(d) for n in nodes for d in digests)  # pinned in its own store
    assert (await nodes[1].stats())["admitted"] == len(subs)

    async def round_closed() -> bool:
        infos = [await n.round_info() for n in nodes]
        return all(i.results for i in infos)

    await until(round_closed)
    result = (await nodes[0].round_info()).results[0]
    assert result.included == len(subs) and result.reason == "quota"
    height = min(n.app.height for n in nodes)
    assert len({n.app.store.get(height).hash for n in nodes}) == 1

    await nodes[3].shutdown(nodes[3].caps.operator)
    with pytest.raises(IngressClosedError):
        await nodes[3].submit(batch)
    for n in nodes[:3]:
        await n.shutdown(n.caps.operator)

    plain_dir = prepare_node_dir(tmp / "plain", net.keys[0])
    plain = ValidatorNode(str(plain_dir), net.raw_genesis, **FAST)
    with pytest.raises(NoIngressError, match="hosts no ingress"):
        await plain.submit(batch)
    plain.app.close()


def test_a_hosted_ingress_checks_pins_and_admits_a_pools_batch(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))
