"""A block is executed once per node: a checked proposal's resulting state is what its commit
stores when the decided block is the one checked (as ABCI++'s FinalizeBlock), a proposer's own
block is executed when built and not again when checked or committed, and a block never checked
here (catch-up) or different from the one checked still executes, to the same state as a replay."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

import fedray.node.app as app_module
from fedray.core.block import Block
from fedray.core.contracts.accounts import Transfer
from fedray.core.devchain import DevChain, certify, dev_genesis
from fedray.core.state import State
from fedray.core.tx import make_tx
from fedray.node.app import LedgerApp

CHAIN = "execute-once"
GENESIS, VKEYS, AKEYS = dev_genesis(CHAIN, n_validators=4, n_accounts=6)


class CountingApply:
    """The real `apply_block`, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.real = app_module.apply_block

    def __call__(self, *args: object, **kwargs: object) -> State:
        self.calls += 1
        return self.real(*args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> CountingApply:
    counter = CountingApply()
    monkeypatch.setattr(app_module, "apply_block", counter)
    return counter


def transfers(nonce: int = 0, amount: int = 5) -> list[bytes]:
    return [
        make_tx(k, CHAIN, nonce, Transfer(AKEYS[(i + 1) % len(AKEYS)].public_key, amount)).raw
        for i, k in enumerate(AKEYS)
    ]


def replayed(block: Block) -> State:
    """The state after `block` on genesis, by the dev chain (no node, no cache)."""
    chain = DevChain(GENESIS, VKEYS)
    return chain.commit(block)


def decide(app: LedgerApp, block: Block) -> None:
    app.finalize_block(block, certify(block, VKEYS, CHAIN))
    app.commit()


def test_a_checked_block_is_committed_without_executing_again(
    tmp_path: Path, counted: CountingApply
) -> None:
    block = DevChain(GENESIS, VKEYS).propose(transfers())
    app = LedgerApp(tmp_path, GENESIS)
    assert app.process_proposal(block)
    assert counted.calls == 1
    decide(app, block)
    assert counted.calls == 1  # the checked result was reused
    expected = replayed(block)
    assert app.state.root() == expected.root() and app.state.height == 1
    assert app.store.get(1).block().hash == block.hash
    app.close()


def test_a_block_other_than_the_checked_one_executes_at_commit(
    tmp_path: Path, counted: CountingApply
) -> None:
    chain = DevChain(GENESIS, VKEYS)
    checked, decided = chain.propose(transfers(amount=5)), chain.propose(transfers(amount=7))
    assert checked.hash != decided.hash
    app = LedgerApp(tmp_path, GENESIS)
    assert app.process_proposal(checked)
    decide(app, decided)
    assert counted.calls == 2
    assert app.state.root() == replayed(decided).root() != replayed(checked).root()
    app.close()


def test_a_block_never_checked_executes_at_commit(tmp_path: Path, counted: CountingApply) -> None:
    block = DevChain(GENESIS, VKEYS).propose(transfers())
    app = LedgerApp(tmp_path, GENESIS)
    decide(app, block)  # catch-up: decided elsewhere
    assert counted.calls == 1
    assert app.state.root() == replayed(block).root()
    app.close()


def test_a_proposer_executes_its_own_block_once(tmp_path: Path, counted: CountingApply) -> None:
    proposer = GENESIS.state().validators.keys[1 % len(VKEYS)]
    app = LedgerApp(tmp_path / "proposer", GENESIS, keys=VKEYS)
    for raw in transfers():
        assert app.submit(raw) is None
    block = app.prepare_proposal(1, 0, proposer, GENESIS.genesis_time + 1000)
    assert len(block.txs) == len(AKEYS)
    assert app.process_proposal(block)
    decide(app, block)
    assert counted.calls == 1
    other = LedgerApp(tmp_path / "other", GENESIS)  # a peer checks it from scratch
    assert other.process_proposal(block)
    assert app.state.root() == replayed(block).root()
    assert len(app.mempool) == 0
    other.close()
    app.close()


def test_a_proposer_whose_pending_transactions_no_longer_apply_filters_them(
    tmp_path: Path,
) -> None:
    """The pending run is tried first; a transaction that fails in the block (here: its nonce was
    used since admission) is left out by the one-by-one selection, and the block stays valid."""
    proposer = GENESIS.state().validators.keys[1 % len(VKEYS)]
    app = LedgerApp(tmp_path, GENESIS, keys=VKEYS)
    stale, fresh = transfers()[0], transfers()[1]
    assert app.submit(stale) is None and app.submit(fresh) is None
    s = app.state
    sender = AKEYS[0].public_key
    used = replace(s.accounts.accounts[sender], nonce=1)
    app.state = replace(s, accounts=s.accounts.updated({sender: used}))
    block = app.prepare_proposal(1, 0, proposer, GENESIS.genesis_time + 1000)
    assert list(block.txs) == [fresh]
    assert app.process_proposal(block)
    app.close()


class HeldApply:
    """The real `apply_block`, its first call held at its start until `release` (a long
    aggregation)."""

    def __init__(self) -> None:
        self.real = app_module.apply_block
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: object, **kwargs: object) -> State:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(30)
        return self.real(*args, **kwargs)  # type: ignore[arg-type]


def test_a_proposal_executes_outside_the_app_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a proposal executes, admissions go on."""
    held = HeldApply()
    monkeypatch.setattr(app_module, "apply_block", held)
    block = DevChain(GENESIS, VKEYS).propose(transfers())
    app = LedgerApp(tmp_path, GENESIS)
    verdict: list[bool] = []
    checker = threading.Thread(target=lambda: verdict.append(app.process_proposal(block)))
    checker.start()
    assert held.entered.wait(30)
    admitted = threading.Thread(target=lambda: app.submit(transfers(nonce=0, amount=9)[2]))
    admitted.start()
    admitted.join(10)  # on the lock, this would wait for the held execution
    done_while_held = not admitted.is_alive() and not held.release.is_set()
    held.release.set()
    checker.join()
    admitted.join()
    assert done_while_held and verdict == [True] and len(app.mempool) == 1
    assert block.hash in app._checked
    app.close()


def test_a_check_overtaken_by_a_commit_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldApply()
    monkeypatch.setattr(app_module, "apply_block", held)
    chain = DevChain(GENESIS, VKEYS)
    checked, decided = chain.propose(transfers(amount=5)), chain.propose(transfers(amount=7))
    app = LedgerApp(tmp_path, GENESIS)
    checker = threading.Thread(target=app.process_proposal, args=(checked,))
    checker.start()
    assert held.entered.wait(30)
    decide(app, decided)  # peers decided another block first; it executes here
    held.release.set()
    checker.join()
    assert app.height == 1 and checked.hash not in app._checked  # a result of height 1's base
    assert app.state.root() == replayed(decided).root()
    app.close()
