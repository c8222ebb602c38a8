"""When a round closes: once every selected client answered (an update or a `skip`), whatever the
time; at its deadline only when both its block count and its block-time budget have passed."""

from __future__ import annotations

import dataclasses

from fedray.core.contracts.rounds import RoundsState, Skip, genesis_rounds
from fedray.core.crypto import key_from_seed
from fedray.core.devchain import BLOCK_INTERVAL_MS, DevChain, dev_genesis
from fedray.core.state import GenesisAccount, Params
from fedray.core.tx import make_tx

CLIENTS = [key_from_seed(f"round-close/client/{i}".encode()) for i in range(3)]


def chain(deadline_blocks: int, timeout_ms: int) -> DevChain:
    genesis, vkeys, _ = dev_genesis("round-close", n_accounts=0)
    accounts = genesis.accounts + tuple(
        GenesisAccount(k.public_key, balance=10**6, stake=100, is_client=True) for k in CLIENTS
    )
    params = Params(
        fl_clients_per_round=3, fl_round_deadline=deadline_blocks, fl_round_timeout_ms=timeout_ms
    )
    genesis = dataclasses.replace(
        genesis,
        accounts=accounts,
        params=params,
        sections={"rounds": genesis_rounds(b"\x07" * 32, 1024)},
    )
    dev = DevChain(genesis, vkeys)
    dev.advance()  # block 1 opens round 0 with all three clients
    return dev


def rounds(dev: DevChain) -> RoundsState:
    state: RoundsState = dev.state.section("rounds")
    return state


def test_a_round_whose_clients_all_skip_closes_at_once_and_records_them() -> None:
    dev = chain(deadline_blocks=1000, timeout_ms=10**9)
    skips = [make_tx(k, "round-close", 0, Skip(0)).raw for k in CLIENTS[:2]]
    dev.advance(skips)
    assert rounds(dev).open and rounds(dev).submitted() == 2  # one client still to answer
    dev.advance([make_tx(CLIENTS[2], "round-close", 0, Skip(0)).raw])
    result = rounds(dev).results[-1]
    assert result.reason == "quota" and result.closed_at == 3
    assert result.skipped == tuple(sorted(k.public_key for k in CLIENTS))
    assert result.global_after == result.global_before  # nothing to aggregate
    assert rounds(dev).skipped == () and rounds(dev).round == 1


def test_the_deadline_needs_its_blocks_and_its_block_time() -> None:
    # 3 blocks, but 10 s of block time (10 blocks of BLOCK_INTERVAL_MS): the time decides
    dev = chain(deadline_blocks=3, timeout_ms=10 * BLOCK_INTERVAL_MS)
    opened = rounds(dev)
    assert opened.deadline == 4 and opened.deadline_ms == dev.state.last_block_time + 10_000
    for _ in range(9):
        dev.advance()
        assert rounds(dev).open, f"closed early at height {dev.state.height}"
    dev.advance()
    result = rounds(dev).results[-1]
    assert result.reason == "deadline" and result.closed_at == 11


def test_without_a_time_budget_the_block_count_decides() -> None:
    dev = chain(deadline_blocks=3, timeout_ms=0)
    for _ in range(2):
        dev.advance()
        assert rounds(dev).open
    dev.advance()
    assert rounds(dev).results[-1].reason == "deadline" and rounds(dev).results[-1].closed_at == 4
