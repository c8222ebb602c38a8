"""Finding 9 (unbonding): unstaked tokens stay slashable for `unbonding_blocks`, so an equivocator
who unstakes before its evidence lands is still burned; they reach the balance at the end of the
block where the period ends, and the supply identity counts them meanwhile."""

from __future__ import annotations

import dataclasses

import pytest

from fedray.core.block import PREVOTE, Vote
from fedray.core.context import ExecContext
from fedray.core.contracts.accounts import Transfer, Unstake
from fedray.core.contracts.economy import BPS, supply_identity
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.evidence import Evidence
from fedray.core.state import total_supply
from fedray.core.transition import apply_tx
from fedray.core.tx import make_tx
from fedray.errors import InsufficientBalanceError

CHAIN = "unbonding-test"


def chain_with(unbonding_blocks: int) -> tuple[DevChain, int]:
    genesis, vkeys, _ = dev_genesis(CHAIN, n_validators=4, n_accounts=1)
    params = dataclasses.replace(genesis.params, unbonding_blocks=unbonding_blocks)
    genesis = dataclasses.replace(genesis, params=params)
    chain = DevChain(genesis, vkeys)
    return chain, total_supply(chain.state.accounts.accounts.values())


def test_an_equivocator_who_unstakes_before_its_evidence_lands_is_still_burned() -> None:
    chain, supply = chain_with(unbonding_blocks=100)
    cheat = chain.validator_keys[3]
    stake = chain.state.account(cheat.public_key).stake
    a = Vote(PREVOTE, 1, 0, b"\x01" * 32, cheat.public_key).signed(cheat, CHAIN)
    b = Vote(PREVOTE, 1, 0, b"\x02" * 32, cheat.public_key).signed(cheat, CHAIN)
    chain.advance()  # height 1: the double prevote
    chain.advance([make_tx(cheat, CHAIN, 0, Unstake(stake)).raw])  # everything, at once
    acct = chain.state.account(cheat.public_key)
    assert acct.stake == 0 and cheat.public_key not in chain.state.validators
    balance_after_unstake = acct.balance
    chain.advance()
    chain.commit(chain.propose([], evidence=[Evidence.of(a, b).to_bytes()]))  # lands later
    (record,) = chain.state.section("penalties").values()
    expected_burn = stake * chain.state.params.slash_double_sign_bps // BPS
    assert record.offender == cheat.public_key and record.banned
    assert record.burned == expected_burn > 0
    unbonding = chain.state.section("unbonding")[cheat.public_key]
    assert sum(e.amount for e in unbonding) == stake - expected_burn
    rewards_only = chain.state.account(cheat.public_key).balance - balance_after_unstake
    assert 0 <= rewards_only < stake - expected_burn  # the unbonding tokens are not in it
    exists, booked = supply_identity(chain.state, supply)
    assert exists == booked


def test_unbonding_tokens_reach_the_balance_at_the_end_of_the_period() -> None:
    chain, supply = chain_with(unbonding_blocks=3)
    key = chain.validator_keys[0]
    chain.advance()
    chain.advance([make_tx(key, CHAIN, 0, Unstake(4_000)).raw])  # height 2: released at 5
    before = chain.state.account(key.public_key)
    assert chain.state.section("unbonding")[key.public_key][0].release_at == 5
    # Not spendable meanwhile.
    ctx = ExecContext(3, chain.state.last_block_time + 1, key.public_key)
    with pytest.raises(InsufficientBalanceError):
        spend = Transfer(b"\x09" * 32, before.balance + 1)
        apply_tx(chain.state, make_tx(key, CHAIN, 1, spend).raw, ctx)
    balances = [before.balance]
    for height in (3, 4, 5):
        assert (key.public_key in chain.state.section("unbonding")) == (height <= 5)
        chain.advance()
        balances.append(chain.state.account(key.public_key).balance)
        exists, booked = supply_identity(chain.state, supply)
        assert exists == booked
    gains = [after - prior for prior, after in zip(balances, balances[1:], strict=False)]
    assert gains[2] - gains[1] == 4_000  # heights 4 and 5 pay the same reward; 5 also releases
    assert key.public_key not in chain.state.section("unbonding")
