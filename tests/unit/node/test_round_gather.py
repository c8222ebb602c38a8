"""`Mempool.round_outstanding`, what the proposer asks before it holds a block for a round's
updates (runtime/validator.py): true while a round is open and the ready transactions leave a
selected client without its turn; false once they complete it, and when no round is open."""

from __future__ import annotations

import dataclasses

from fedray.core.context import BlockEnv
from fedray.core.contracts.rounds import Skip, genesis_rounds
from fedray.core.crypto import key_from_seed
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.state import GenesisAccount, Params
from fedray.core.tx import make_tx
from fedray.node.mempool import Mempool

CHAIN = "round-gather"
CLIENTS = [key_from_seed(f"{CHAIN}/client/{i}".encode()) for i in range(3)]
ENV = BlockEnv()


def chain(with_clients: bool = True) -> DevChain:
    genesis, vkeys, _ = dev_genesis(CHAIN, n_accounts=0)
    clients = tuple(
        GenesisAccount(k.public_key, balance=10**6, stake=100, is_client=True) for k in CLIENTS
    )
    genesis = dataclasses.replace(
        genesis,
        accounts=genesis.accounts + (clients if with_clients else ()),
        params=Params(fl_clients_per_round=3, fl_round_deadline=1000),
        sections={"rounds": genesis_rounds(b"\x07" * 32, 1024)},
    )
    dev = DevChain(genesis, vkeys)
    dev.advance()  # block 1 opens round 0 with every client (none when there are none)
    return dev


def skip(i: int, round_: int = 0, nonce: int = 0) -> bytes:
    return make_tx(CLIENTS[i], CHAIN, nonce, Skip(round_)).raw


def test_an_open_round_is_outstanding_until_the_ready_transactions_complete_it() -> None:
    dev = chain()
    pool = Mempool()
    assert pool.round_outstanding(dev.state, ENV)  # nobody answered yet
    for i in range(2):
        assert pool.add(skip(i), dev.state, ENV) is None
        assert pool.round_outstanding(dev.state, ENV)
    assert pool.add(skip(2), dev.state, ENV) is None
    assert not pool.round_outstanding(dev.state, ENV)  # a block of these closes the round
    block = dev.advance([skip(i) for i in range(3)])
    pool.committed(block.txs, dev.state, ENV)
    assert dev.state.section("rounds").round == 1  # the same block opened the next round
    assert pool.round_outstanding(dev.state, ENV)


def test_a_round_answered_in_part_on_chain_counts_what_the_chain_holds() -> None:
    dev = chain()
    dev.advance([skip(0), skip(1)])
    pool = Mempool()
    assert pool.round_outstanding(dev.state, ENV)
    assert pool.add(skip(2), dev.state, ENV) is None
    assert not pool.round_outstanding(dev.state, ENV)


def test_without_an_open_round_nothing_is_outstanding() -> None:
    dev = chain(with_clients=False)
    assert not dev.state.section("rounds").open
    assert not Mempool().round_outstanding(dev.state, ENV)
