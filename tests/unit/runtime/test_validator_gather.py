"""Four in-process validators on a chain with an open round: while the round waits for updates the
proposer holds its block (`round_gather_s`), so answers admitted one after the other still share
the block that closes the round; with gathering off, a block goes as soon as transactions arrive."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from fedray.core.contracts.rounds import Skip, genesis_rounds
from fedray.core.crypto import key_from_seed
from fedray.core.devchain import dev_genesis
from fedray.core.encoding import encode
from fedray.core.state import GenesisAccount, Params
from fedray.core.tx import make_tx
from fedray.runtime.node_settings import prepare_node_dir
from fedray.runtime.validator import ValidatorNode
from tests.unit.runtime.node_harness import FAST, until

CHAIN = "fedray-gather"
CLIENTS = [key_from_seed(f"{CHAIN}/client/{i}".encode()) for i in range(3)]
# a long gather (and a propose timeout above it): the third answer always arrives within it
GATHER = {**FAST, "timeout_propose_s": 30.0, "round_gather_s": 20.0}


def _genesis() -> bytes:
    genesis, vkeys, _ = dev_genesis(CHAIN, n_accounts=0)
    clients = tuple(
        GenesisAccount(k.public_key, balance=10**6, stake=100, is_client=True) for k in CLIENTS
    )
    genesis = dataclasses.replace(
        genesis,
        accounts=genesis.accounts + clients,
        params=Params(fl_clients_per_round=3, fl_round_deadline=1000),
        sections={"rounds": genesis_rounds(b"\x07" * 32, 1024)},
    )
    return encode(genesis.to_canonical())


async def _closing_block_txs(
    tmp: Path, settings: dict[str, float], committed: bool, pace_s: float = 0.3
) -> tuple[int, int]:
    """How many transactions the block that closes round 0 holds, and the consensus round that
    committed it, its three skips admitted one after the other on every validator: `pace_s` apart
    (a proposer that does not gather builds a block of what arrived meanwhile), or (`committed`)
    once each skip is on chain."""
    genesis, vkeys, _ = dev_genesis(CHAIN, n_accounts=0)
    raw = _genesis()
    nodes = [
        ValidatorNode(str(prepare_node_dir(tmp / f"v{i}", k)), raw, **settings)
        for i, k in enumerate(vkeys)
    ]
    for n in nodes:
        await n.connect(n.caps.operator, nodes)
    for n in nodes:
        await n.start(n.caps.operator)
    try:

        async def round_open() -> bool:
            return all(n.app.state.section("rounds").open for n in nodes)

        await until(round_open)
        for client in CLIENTS:  # each answer admitted everywhere before the next one is sent
            tx = make_tx(client, CHAIN, 0, Skip(0)).raw
            assert await asyncio.gather(*(n.submit_txs([tx]) for n in nodes)) == [[]] * 4
            if committed:

                async def on_chain() -> bool:
                    return all(len(n.app.mempool) == 0 for n in nodes)

                await until(on_chain)
            else:
                await asyncio.sleep(pace_s)  # pacing only: blocks here take a few milliseconds

        async def closed() -> bool:
            return bool(nodes[0].app.state.section("rounds").results)

        await until(closed)
        result = nodes[0].app.state.section("rounds").results[0]
        assert result.reason == "quota" and not any(n.failed for n in nodes)
        stored = nodes[0].app.store.get(result.closed_at)
        return len(stored.block().txs), stored.cert().round
    finally:
        for n in nodes:
            await n.shutdown(n.caps.operator)


def test_a_rounds_answers_share_the_block_that_closes_it(tmp_path: Path) -> None:
    assert asyncio.run(_closing_block_txs(tmp_path, GATHER, committed=False)) == (3, 0)


def test_peers_wait_for_a_gather_longer_than_their_propose_timeout(tmp_path: Path) -> None:
    # the answers take 1.2 s, past the 0.4 s propose timeout: peers that did not allow for the
    # gather (gather.py) would prevote nil and the round would close in a later consensus round
    long_gather = {**FAST, "round_gather_s": 5.0}
    txs, consensus_round = asyncio.run(
        _closing_block_txs(tmp_path, long_gather, committed=False, pace_s=0.6)
    )
    assert (txs, consensus_round) == (3, 0)


def test_without_gathering_answers_go_in_blocks_as_they_come(tmp_path: Path) -> None:
    # the baseline the gather improves on: each answer committed before the next is sent
    no_gather = {**FAST, "round_gather_s": 0.0}
    assert asyncio.run(_closing_block_txs(tmp_path, no_gather, committed=True))[0] == 1
