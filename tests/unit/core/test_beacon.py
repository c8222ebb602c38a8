"""Finding 4: a proposer cannot steer client selection by grinding its block's time or content;
the draw follows its VRF output, which is fixed by (chain id, height, previous output) and its key."""

from __future__ import annotations

import dataclasses

from fedray.core import vrf
from fedray.core.beacon import prove_next, vrf_input
from fedray.core.block import Block, make_block
from fedray.core.contracts.accounts import Register, Stake, Transfer
from fedray.core.contracts.rounds import genesis_rounds
from fedray.core.contracts.selection import select_clients, selection_seed
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.encoding import digest, hash_value
from fedray.core.state import Genesis, GenesisAccount, State
from fedray.core.transition import apply_block
from fedray.core.tx import make_tx

CHAIN = "beacon-test"
BASE, VKEYS, AKEYS = dev_genesis(CHAIN, n_validators=4, n_accounts=1)
CLIENTS = [key_from_seed(f"beacon/client/{i}".encode()) for i in range(50)]
GENESIS: Genesis = dataclasses.replace(
    BASE,
    accounts=BASE.accounts
    + tuple(GenesisAccount(c.public_key, 10**6, 1000, is_client=True) for c in CLIENTS),
    sections={"rounds": genesis_rounds(b"\x07" * 32, 1024)},
)


def block_by(key: PrivateKey, state: State, time_offset: int, txs: list[bytes]) -> Block:
    """Block 1 by `key`: every variant a grinding proposer could try (time, content)."""
    return make_block(
        CHAIN,
        1,
        state.last_block_time + time_offset,
        state.last_block_hash,
        state.root(),
        key.public_key,
        state.validators,
        txs,
        None,
        (),
        prove_next(key, state),
    )


def selected(state: State, block: Block) -> tuple[bytes, ...]:
    rs = apply_block(state, block).section("rounds")
    assert rs.open and len(rs.selected) == 10  # block 1 opens round 0
    return rs.selected  # type: ignore[no-any-return]


def test_grinding_time_and_content_leaves_the_selection_unchanged() -> None:
    state = GENESIS.state()
    proposer, payer = VKEYS[1], AKEYS[0]
    variants = [
        block_by(proposer, state, offset, [make_tx(payer, CHAIN, 0, Transfer(b"\x01" * 32, n)).raw])
        for offset, n in zip(range(1, 61), range(1, 61), strict=True)
    ] + [block_by(proposer, state, offset, []) for offset in range(1, 41)]
    assert len({b.hash for b in variants}) == 100
    draws = {selected(state, b) for b in variants}
    assert len(draws) == 1  # one selection, whatever the proposer tries
    # Drawn from the block hash (the old rule), the same variants give many selections.
    candidates = sorted(c.public_key for c in CLIENTS)
    by_hash = {
        select_clients(candidates, 10, hash_value(["fedray/select", b.hash, 0])) for b in variants
    }
    assert len(by_hash) > 90


def test_the_draw_depends_on_the_proposer_and_the_chain_of_outputs() -> None:
    """Another proposer's block for the same height draws differently (which is what a withholding
    proposer buys: one more draw); the next height's input chains the previous output."""
    state = GENESIS.state()
    assert selected(state, block_by(VKEYS[1], state, 1, [])) != selected(
        state, block_by(VKEYS[2], state, 1, [])
    )
    chain = DevChain(GENESIS, VKEYS)
    chain.advance()
    first = chain.state.section("beacon").output
    chain.advance()
    assert len(first) == 64 and chain.state.section("beacon").output != first


def test_sybils_registered_in_the_opening_block_are_not_drawn() -> None:
    """The proposer knows its output before building the block, so it could grind sybil keys that
    rank first under it and register them in that block; only clients eligible before the block
    take part in the draw."""
    state = GENESIS.state()
    proposer, funder = VKEYS[1], AKEYS[0]
    output = vrf.verify(
        proposer.public_key,
        vrf_input(CHAIN, 1, b""),
        prove_next(proposer, state),
    )
    seed = selection_seed(output, 0)
    honest_ranks = sorted(digest(seed + c.public_key) for c in CLIENTS)
    sybils = [
        k
        for k in (key_from_seed(f"beacon/sybil/{i}".encode()) for i in range(200))
        if digest(seed + k.public_key) < honest_ranks[0]  # would be drawn first
    ][:3]
    assert len(sybils) == 3
    txs = []
    for i, sybil in enumerate(sybils):
        txs.append(make_tx(funder, CHAIN, i, Transfer(sybil.public_key, 100_000)).raw)
        txs.append(make_tx(sybil, CHAIN, 0, Stake(1_000)).raw)
        txs.append(make_tx(sybil, CHAIN, 1, Register("client")).raw)
    after = apply_block(state, block_by(proposer, state, 1, txs))
    assert all(after.account(s.public_key).is_client for s in sybils)
    drawn = after.section("rounds").selected
    assert not {s.public_key for s in sybils} & set(drawn)
