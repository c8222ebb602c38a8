"""The mempool's executed window: a backlog larger than the window commits in order across
blocks, a queued transaction is refused in its turn when it can no longer apply, admission
refuses replays and gaps from the committed nonce plus the queue without running anything, held
transactions still join a queue, and the work after a commit is bounded by the window."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import fedray.node.mempool as mempool_module
from fedray.core.context import BlockEnv
from fedray.core.contracts.accounts import Transfer
from fedray.core.crypto import PrivateKey
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.encoding import digest
from fedray.core.state import Params
from fedray.core.tx import SignedTx, make_tx
from fedray.node.mempool import MAX_AHEAD, Mempool, Rejection

CHAIN = "mempool-window"
ENV = BlockEnv()


def network(block_txs: int, n_accounts: int = 4) -> tuple[DevChain, list[PrivateKey]]:
    """A chain whose blocks hold `block_txs` transactions (the window: twice that), and its
    funded accounts in key order (the proposal's sender order)."""
    params = Params(min_stake_client=0, max_block_txs=block_txs)
    genesis, vkeys, akeys = dev_genesis(CHAIN, n_validators=1, n_accounts=n_accounts, params=params)
    return DevChain(genesis, vkeys), sorted(akeys, key=lambda k: k.public_key)


def transfer(key: PrivateKey, nonce: int, amount: int = 1) -> SignedTx:
    return make_tx(key, CHAIN, nonce, Transfer(b"\x01" * 32, amount))


def admit(pool: Mempool, dev: DevChain, *txs: SignedTx) -> None:
    for stx in txs:
        assert pool.add(stx.raw, dev.state, ENV) is None


def commit_proposal(pool: Mempool, dev: DevChain) -> list[bytes]:
    """Propose from the pool, commit it on `dev` and tell the pool; the block's transactions."""
    txs = pool.fill(pool.candidates(), dev.state.params)
    block = dev.advance(txs)  # strict: every transaction must apply
    pool.committed([digest(raw) for raw in block.txs], dev.state, ENV)
    return list(block.txs)


@contextmanager
def counted_runs() -> Iterator[list[int]]:
    """Count the mempool's calls of `execute_tx` (the real one runs)."""
    calls = [0]
    real = mempool_module.execute_tx

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mempool_module, "execute_tx", counting)
        yield calls


def test_a_backlog_larger_than_the_window_commits_in_order_across_blocks() -> None:
    dev, (a, b, c, _) = network(block_txs=2)
    pool = Mempool()
    txs = {k: [transfer(k, n) for n in range(4)] for k in (a, b, c)}
    admit(pool, dev, *(t for k in (c, a, b) for t in txs[k]))  # senders out of key order
    assert len(pool.window()) < len(pool) == 12  # a backlog queues behind the window
    blocks = []
    while len(pool) and len(blocks) < 20:
        blocks.append(commit_proposal(pool, dev))
    # each block: each sender's first (key order), then each one's second, ..., as when the
    # whole backlog ran after each commit
    pairs = [(a, 0), (b, 0), (a, 1), (b, 1), (a, 2), (b, 2), (a, 3), (b, 3)]
    pairs += [(c, n) for n in range(4)]
    want = [txs[k][n].raw for k, n in pairs]
    assert blocks == [want[i : i + 2] for i in range(0, 12, 2)]
    assert pool.rejected == 0 and len(pool) == 0
    accounts = [dev.state.account(k.public_key) for k in (a, b, c)]
    assert all(acc is not None and acc.nonce == 4 for acc in accounts)


def test_a_queued_transaction_that_turns_invalid_is_refused_in_its_turn() -> None:
    dev, (a, b, _, _) = network(block_txs=1)  # the window: two transactions
    refused: list[Rejection] = []
    pool = Mempool(on_reject=refused.append)
    a0, a1, b0 = transfer(a, 0), transfer(a, 1, amount=50_000), transfer(b, 0)
    admit(pool, dev, b0, a0, a1)
    assert [t.hash for t in pool.window()] == [a0.hash, b0.hash]  # a1 queued, not run
    # another pool's block spends almost all of a's balance with a nonce-0 transaction of its own
    drain = make_tx(a, CHAIN, 0, Transfer(b"\x02" * 32, 990_000))
    dev.advance([drain.raw])
    pool.committed([drain.hash], dev.state, ENV)
    assert [(r.tx_hash, r.code) for r in refused] == [
        (a0.hash, "nonce_replay"),  # its nonce is used
        (a1.hash, "insufficient_balance"),  # valid when admitted, not on the new state
    ]
    assert pool.pending() == [b0] and pool.window() == [b0] and pool.rejected == 2


def test_admission_refuses_a_replay_or_a_far_gap_from_the_committed_nonce_and_the_queue() -> None:
    dev, (a, b, _, _) = network(block_txs=1)
    pool = Mempool()
    admit(pool, dev, *(transfer(a, n) for n in range(5)))  # 0 and 1 run, 2..4 queue
    assert len(pool.window()) == 2 and pool.next_nonce(a.public_key, dev.state, ENV) == 5
    with counted_runs() as runs:
        twin = pool.add(transfer(a, 3, amount=2).raw, dev.state, ENV)  # a queued nonce
        far = pool.add(transfer(a, 6 + MAX_AHEAD).raw, dev.state, ENV)  # next is 5
        admit(pool, dev, transfer(a, 6))  # held behind the gap
    assert runs == [0]
    assert twin is not None and twin.code == "nonce_replay"
    assert far is not None and far.code == "nonce_gap"
    assert pool.held() == [transfer(a, 6)]
    # another pool's block used nonces 0..3 with other transactions: admission counts from there
    for n in range(4):
        other = make_tx(a, CHAIN, n, Transfer(b.public_key, 7))
        dev.advance([other.raw])
        pool.committed([other.hash], dev.state, ENV)
    assert pool.next_nonce(a.public_key, dev.state, ENV) == 5  # nonce 4 stays, 6 still waits
    late = pool.add(transfer(a, 3, amount=3).raw, dev.state, ENV)
    assert late is not None and late.code == "nonce_replay"
    assert pool.pending() == [transfer(a, 4)] and pool.held() == [transfer(a, 6)]
    assert pool.rejected == 2 + 4 + 1  # twin and far; 0..3 as replays in their turn; late


def test_held_transactions_join_their_senders_queue_when_the_gap_closes() -> None:
    dev, (a, b, _, _) = network(block_txs=1)
    pool = Mempool()
    a_txs = [transfer(a, n) for n in range(6)]
    admit(pool, dev, *a_txs[:4], a_txs[5])  # 0 and 1 run, 2 and 3 queue, 5 waits for 4
    assert pool.held() == [a_txs[5]] and len(pool.window()) == 2
    admit(pool, dev, a_txs[4])  # the gap closes: 4 and 5 queue behind 3
    assert pool.held() == [] and pool.pending() == a_txs
    assert pool.next_nonce(a.public_key, dev.state, ENV) == 6
    blocks = []
    while len(pool) and len(blocks) < 10:
        blocks.append(commit_proposal(pool, dev))
    assert blocks == [[t.raw] for t in a_txs] and pool.rejected == 0


def test_the_runs_after_a_commit_are_bounded_by_the_window_not_the_backlog() -> None:
    block_txs, senders, per_sender = 5, 20, 10
    dev, keys = network(block_txs=block_txs, n_accounts=senders)
    pool = Mempool()
    admit(pool, dev, *(transfer(k, n) for n in range(per_sender) for k in keys))
    backlog = senders * per_sender
    assert len(pool) == backlog
    window = 2 * block_txs
    per_commit = []
    while len(pool) and len(per_commit) < 2 * backlog // block_txs:
        txs = pool.fill(pool.candidates(), dev.state.params)
        block = dev.advance(txs)
        with counted_runs() as runs:
            pool.committed([digest(raw) for raw in block.txs], dev.state, ENV)
        per_commit.append(runs[0])
    assert len(per_commit) == backlog // block_txs and pool.rejected == 0
    assert max(per_commit) == window  # the rerun, and the refill, of the window alone


def test_the_blocks_are_those_of_a_pool_that_runs_its_whole_backlog_whatever_the_arrival() -> None:
    def blocks_of(order: list[SignedTx], window_blocks: int) -> list[list[bytes]]:
        dev, _ = network(block_txs=3, n_accounts=5)
        pool = Mempool(window_blocks=window_blocks)
        admit(pool, dev, *order)
        blocks = []
        while len(pool) and len(blocks) < 40:
            blocks.append(commit_proposal(pool, dev))
        assert len(pool) == 0 and pool.rejected == 0
        return blocks

    _, keys = network(block_txs=3, n_accounts=5)
    txs = [transfer(k, n) for i, k in enumerate(keys) for n in range(2 + 2 * i)]  # 30
    by_nonce = sorted(txs, key=lambda t: (t.tx.nonce, t.tx.sender))
    arrivals = [txs, txs[::-1], by_nonce, by_nonce[::-1], txs[1::2] + txs[::2]]
    everything = blocks_of(txs, window_blocks=10**9)  # the window never fills: all of it runs
    assert all(blocks_of(order, window_blocks=2) == everything for order in arrivals)


def test_a_queued_nonce_that_another_pools_block_used_is_refused_when_its_sender_acts() -> None:
    dev, (a, b, c, _) = network(block_txs=1)  # the window: a's and b's first
    refused: list[Rejection] = []
    pool = Mempool(on_reject=refused.append)
    c0 = transfer(c, 0)
    admit(pool, dev, transfer(a, 0), transfer(b, 0), c0)
    assert c0 not in pool.window()
    other = make_tx(c, CHAIN, 0, Transfer(b.public_key, 7))  # reached another validator only
    dev.advance([other.raw])
    pool.committed([other.hash], dev.state, ENV)
    assert c0 in pool.pending() and not refused  # queued: not run, its turn has not come
    c1 = transfer(c, 1)
    assert pool.add(c1.raw, dev.state, ENV) is None  # 1 is c's next nonce, not a replay
    assert [(r.tx_hash, r.code) for r in refused] == [(c0.hash, "nonce_replay")]
    assert c0 not in pool.pending() and c1 in pool.pending()
    assert pool.next_nonce(c.public_key, dev.state, ENV) == 2


def test_the_window_passes_over_transactions_no_proposal_can_take_yet() -> None:
    dev, (a, b, c, _) = network(block_txs=1)  # the window: two transactions
    a0, b0, c0, c1 = transfer(a, 0), transfer(b, 0), transfer(c, 0), transfer(c, 1)
    missing = {a0.raw, b0.raw}  # say their payloads are not here yet
    pool = Mempool(available=lambda raw: raw not in missing)
    admit(pool, dev, a0, b0, c0, c1)
    # the first two in the proposal order cannot be proposed: c's fill the window instead
    assert pool.candidates(pool.available) == [c0.raw, c1.raw]
    assert commit_proposal_available(pool, dev) == [c0.raw]
    assert pool.candidates(pool.available) == [c1.raw]  # a0 and b0 queue, not run
    missing.clear()
    assert commit_proposal_available(pool, dev) == [c1.raw]
    assert commit_proposal_available(pool, dev) == [a0.raw]  # here now: in the window
    assert commit_proposal_available(pool, dev) == [b0.raw] and len(pool) == 0


def commit_proposal_available(pool: Mempool, dev: DevChain) -> list[bytes]:
    txs = pool.fill(pool.candidates(pool.available), dev.state.params)
    block = dev.advance(txs)
    pool.committed([digest(raw) for raw in block.txs], dev.state, ENV)
    return list(block.txs)
