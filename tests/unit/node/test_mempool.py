"""The mempool orders by sender and nonce, holds transactions behind a nonce gap until it closes,
packs blocks by gas, and keeps the first transaction of a sender and nonce."""

from __future__ import annotations

import itertools
from dataclasses import replace

from fedray.core.context import BlockEnv, ExecContext
from fedray.core.contracts.accounts import Register, Stake, Transfer
from fedray.core.crypto import PrivateKey
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.state import Params, State
from fedray.core.transition import check_tx_stateless, select_txs
from fedray.core.tx import SignedTx, make_tx
from fedray.node.mempool import MAX_AHEAD, Mempool

CHAIN = "mempool"
GENESIS, VKEYS, AKEYS = dev_genesis(
    CHAIN, n_validators=1, n_accounts=4, params=Params(min_stake_client=0)
)
A, B, C, D = sorted(AKEYS, key=lambda k: k.public_key)  # sender order is key order
ENV = BlockEnv()


def transfer(key: PrivateKey, nonce: int, amount: int = 1) -> SignedTx:
    return make_tx(key, CHAIN, nonce, Transfer(D.public_key, amount))


def stake(key: PrivateKey, nonce: int) -> SignedTx:
    return make_tx(key, CHAIN, nonce, Stake(10))


def register(key: PrivateKey, nonce: int) -> SignedTx:
    return make_tx(key, CHAIN, nonce, Register("client"))


def gas(stx: SignedTx, state: State) -> int:
    checked = check_tx_stateless(stx.raw, CHAIN, state.params.max_tx_bytes)
    return checked.spec.base_gas + state.params.gas_per_byte * checked.size


def admit(pool: Mempool, state: State, *txs: SignedTx) -> None:
    for stx in txs:
        assert pool.add(stx.raw, state, ENV) is None


def applies(state: State, raws: list[bytes]) -> bool:
    """The transactions apply in this order on `state`, none refused."""
    ctx = ExecContext(state.height + 1, state.last_block_time + 1, VKEYS[0].public_key, ENV)
    kept, refused = select_txs(state, raws, ctx)
    return kept == raws and not refused


def test_a_nonce_gap_holds_later_nonces_until_it_closes() -> None:
    state, pool = GENESIS.state(), Mempool()
    a0, a1, a2, a3 = (transfer(A, n) for n in range(4))
    admit(pool, state, a2, a3)  # both ahead of nonce 0: held, not refused
    assert len(pool) == 2 and pool.candidates() == [] and pool.rejected == 0
    assert pool.next_nonce(A.public_key, state, ENV) == 0
    admit(pool, state, a0)
    assert pool.candidates() == [a0.raw]  # 1 is still missing: 2 and 3 wait
    assert pool.fill(pool.candidates(), state.params) == [a0.raw]
    admit(pool, state, a1)  # the gap closes: all four run, in nonce order
    assert pool.candidates() == [t.raw for t in (a0, a1, a2, a3)] and not pool.held()
    assert pool.next_nonce(A.public_key, state, ENV) == 4
    assert applies(state, pool.candidates())


def test_arrival_order_does_not_change_the_proposal_order() -> None:
    state = GENESIS.state()
    txs = [transfer(k, n) for k in (C, A, B) for n in range(3)]
    orders = []
    for perm in itertools.islice(itertools.permutations(txs), 0, 400, 37):
        pool = Mempool()
        admit(pool, state, *perm)
        orders.append(pool.candidates())
    # each sender's first (senders in key order), then each one's second, ...
    want = [transfer(k, n).raw for n in range(3) for k in (A, B, C)]
    assert all(o == want for o in orders)
    assert applies(state, want)


def test_fill_packs_by_gas_and_leaves_a_skipped_senders_later_nonces_out() -> None:
    state, pool = GENESIS.state(), Mempool()
    a0, a1, b0, b1 = transfer(A, 0), transfer(A, 1), register(B, 0), transfer(B, 1)
    admit(pool, state, b0, b1, a0, a1)
    assert pool.candidates() == [a0.raw, b0.raw, a1.raw, b1.raw]
    # room for three transfers: after a0, b0 does not fit, and b1 cannot run without it
    assert gas(b0, state) > gas(a1, state) + gas(b1, state)
    limit = gas(a0, state) + gas(a1, state) + gas(b1, state)
    params = replace(state.params, block_gas_limit=limit)
    assert pool.fill(pool.candidates(), params) == [a0.raw, a1.raw]
    assert applies(state, [a0.raw, a1.raw])
    everything = replace(state.params, block_gas_limit=limit + gas(b0, state))
    assert pool.fill(pool.candidates(), everything) == pool.candidates()
    assert applies(state, pool.candidates())
    counted = replace(state.params, max_block_txs=3)
    assert pool.fill(pool.candidates(), counted) == [a0.raw, b0.raw, a1.raw]


def test_duplicates_are_ignored_and_the_first_of_a_nonce_stays() -> None:
    state, pool = GENESIS.state(), Mempool()
    a0, a2 = transfer(A, 0), transfer(A, 2)
    admit(pool, state, a0, a2, a0, a2)  # the same bytes again: nothing new, nothing refused
    assert len(pool) == 2 and pool.rejected == 0
    ready_twin = pool.add(transfer(A, 0, amount=2).raw, state, ENV)
    held_twin = pool.add(transfer(A, 2, amount=2).raw, state, ENV)
    assert ready_twin is not None and ready_twin.code == "nonce_replay"
    assert held_twin is not None and held_twin.code == "nonce_replay"
    assert pool.hashes() == {a0.hash, a2.hash}
    admit(pool, state, transfer(A, 1 + MAX_AHEAD))  # next is 1: as far ahead as may be held
    far = pool.add(transfer(A, 2 + MAX_AHEAD).raw, state, ENV)
    assert far is not None and far.code == "nonce_gap"


def test_a_commit_promotes_held_transactions_and_drops_what_it_included() -> None:
    state, pool = GENESIS.state(), Mempool()
    a0, a1, a2 = (transfer(A, n) for n in range(3))
    admit(pool, state, a0, a2)  # a1 reached another validator only, whose block included it
    chain = DevChain(GENESIS, VKEYS)
    block = chain.propose([a0.raw, a1.raw])
    assert list(block.txs) == [a0.raw, a1.raw]
    pool.committed([a0.hash, a1.hash], chain.commit(block), ENV)
    assert pool.candidates() == [a2.raw] and not pool.held() and len(pool) == 1


def test_a_ready_transaction_behind_a_dropped_one_is_held_again() -> None:
    state, pool = GENESIS.state(), Mempool()
    a0, a1 = transfer(A, 0), stake(A, 1)  # a transfer is longer than a stake
    admit(pool, state, a0, a1)
    smaller = replace(state.params, max_tx_bytes=len(a1.raw))
    pool.committed([], replace(state, params=smaller), ENV)  # a0 is now oversized
    assert pool.candidates() == [] and pool.held() == [a1] and pool.rejected == 1
