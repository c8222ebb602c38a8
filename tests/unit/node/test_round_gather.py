"""`Mempool.round_outstanding`, what the proposer asks before it holds a block for a round's
updates (runtime/validator.py): true while a round is open and the ready transactions leave a
selected client without its turn; false once they complete it, when no round is open, and while
transactions queue behind the mempool's window (the next block is full without waiting)."""

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


def chain(with_clients: bool = True, block_txs: int = 5000) -> DevChain:
    genesis, vkeys, _ = dev_genesis(CHAIN, n_accounts=0)
    clients = tuple(
        GenesisAccount(k.public_key, balance=10**6, stake=100, is_client=True) for k in CLIENTS
    )
    genesis = dataclasses.replace(
        genesis,
        accounts=genesis.accounts + (clients if with_clients else ()),
        params=Params(fl_clients_per_round=3, fl_round_deadline=1000, max_block_txs=block_txs),
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


def test_nothing_is_outstanding_while_transactions_queue_behind_the_window() -> None:
    dev = chain(block_txs=1)  # the window: two transactions
    pool = Mempool()
    for i in range(2):
        assert pool.add(skip(i), dev.state, ENV) is None
    assert pool.round_outstanding(dev.state, ENV)  # client 2 has not answered
    assert pool.add(make_tx(CLIENTS[0], CHAIN, 1, Skip(0)).raw, dev.state, ENV) is None
    assert len(pool) == 3 and len(pool.window()) == 2
    assert not pool.round_outstanding(dev.state, ENV)  # one queues: the next block is full
