"""Incentives and consensus slashing on dev chains: block rewards follow precommits, double signing
is punished once and bans, downtime jails until `unjail`, and the supply identity
(accounts + escrow == genesis + minted - burned) holds over random transaction sequences."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st

import fedray.core  # noqa: F401
from fedray.core.block import PREVOTE, Vote
from fedray.core.contracts.accounts import Stake, Transfer, Unstake
from fedray.core.contracts.economy import account_total, supply_identity
from fedray.core.contracts.slashing import Unjail
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.evidence import Evidence
from fedray.core.state import Params
from fedray.core.tx import make_tx

PARAMS = Params(downtime_window=10, downtime_min_signed_bps=5_000, downtime_jail_blocks=5)
GENESIS, VKEYS, AKEYS = dev_genesis("fedray-economy", n_accounts=6, params=PARAMS)
CHAIN = GENESIS.chain_id
SUPPLY = account_total(GENESIS.state().accounts.accounts.values())


def balanced(chain: DevChain) -> None:
    exists, booked = supply_identity(chain.state, SUPPLY)
    assert exists == booked


def test_block_rewards_follow_precommits() -> None:
    chain = DevChain(GENESIS, VKEYS)
    absent = VKEYS[3].public_key
    for _ in range(4):
        chain.advance(absent=[absent])
    balances = {k.public_key: chain.state.account(k.public_key).balance for k in VKEYS}
    start = GENESIS.state().account(absent).balance
    # Blocks 2..4 carry certificates without validator 3; block 1 carries none.
    share = PARAMS.block_reward * 10_000 // (4 * 10_000)
    assert balances[absent] == start
    for k in VKEYS[:3]:
        assert balances[k.public_key] - start >= 3 * share  # plus proposer fees, if any
    assert chain.state.section("economy").minted == 3 * 3 * share
    balanced(chain)


def test_double_sign_slashed_once_and_banned() -> None:
    chain = DevChain(GENESIS, VKEYS)
    chain.advance()
    chain.advance()
    bad = VKEYS[2]
    stake = chain.state.account(bad.public_key).stake

    def evidence(a: bytes, b: bytes) -> bytes:
        va = Vote(PREVOTE, 1, 0, a, bad.public_key).signed(bad, CHAIN)
        vb = Vote(PREVOTE, 1, 0, b, bad.public_key).signed(bad, CHAIN)
        return Evidence.of(va, vb).to_bytes()

    block = chain.propose(evidence=[evidence(b"\x01" * 32, b"\x02" * 32)])
    chain.commit(block)
    acct = chain.state.account(bad.public_key)
    assert acct.banned and acct.stake == stake - stake * 500 // 10_000
    assert bad.public_key not in chain.state.validators
    # Another pair for the same height is recorded, but the penalty is not applied twice.
    block = chain.propose(evidence=[evidence(b"\x01" * 32, b"\x03" * 32)])
    chain.commit(block)
    assert chain.state.account(bad.public_key).stake == acct.stake
    penalties = [p for p in chain.state.section("penalties").values() if p.kind == "double_sign"]
    assert len(penalties) == 1 and len(chain.state.section("evidence")) == 2
    balanced(chain)


def test_downtime_jails_until_unjail() -> None:
    chain = DevChain(GENESIS, VKEYS)
    lazy = VKEYS[1]
    stake = chain.state.account(lazy.public_key).stake
    height_slashed = None
    for _ in range(15):
        chain.advance(absent=[lazy.public_key])
        if chain.state.account(lazy.public_key).jailed_until and height_slashed is None:
            height_slashed = chain.state.height
    acct = chain.state.account(lazy.public_key)
    # Window of 10 blocks observed from height 2 on: punished at height 11, once.
    assert height_slashed == 11
    assert acct.stake == stake - stake * 100 // 10_000 and acct.jailed_until == 11 + 5
    assert lazy.public_key not in chain.state.validators
    kinds = [p.kind for p in chain.state.section("penalties").values()]
    assert kinds == ["downtime"]
    # Jailed: transfers are refused, unjail is allowed after the jail period.
    transfer = make_tx(lazy, CHAIN, 0, Transfer(AKEYS[0].public_key, 1)).raw
    kept = chain.propose([transfer], strict=False)
    assert kept.txs == ()
    chain.advance([make_tx(lazy, CHAIN, 0, Unjail()).raw])
    assert chain.state.account(lazy.public_key).jailed_until == 0
    assert lazy.public_key in chain.state.validators
    balanced(chain)


def test_unjail_rules() -> None:
    chain = DevChain(GENESIS, VKEYS)
    free = AKEYS[0]
    unjail = make_tx(free, CHAIN, 0, Unjail()).raw
    kept = chain.propose([unjail], strict=False)
    assert kept.txs == ()  # not jailed
    state = chain.state
    acct = dataclasses.replace(state.account(free.public_key), jailed_until=10)
    chain.state = dataclasses.replace(
        state, accounts=state.accounts.updated({free.public_key: acct})
    )
    assert chain.propose([unjail], strict=False).txs == ()  # jail period not over


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32))
def test_supply_identity_over_random_sequences(seed: int) -> None:
    rng = random.Random(seed)
    chain = DevChain(GENESIS, VKEYS)
    nonces = [0] * len(AKEYS)
    for _ in range(6):
        txs = []
        for _ in range(rng.randrange(1, 12)):
            i = rng.randrange(len(AKEYS))
            amount = rng.choice([1, 50, 5_000, 2_000_000])
            payload = rng.choice(
                [
                    Transfer(AKEYS[rng.randrange(len(AKEYS))].public_key, amount),
                    Stake(amount),
                    Unstake(amount),
                ]
            )
            txs.append(make_tx(AKEYS[i], CHAIN, nonces[i] + rng.choice([0, 0, 0, 1]), payload).raw)
            nonces[i] = chain.state.account(AKEYS[i].public_key).nonce
        absent = [k.public_key for k in VKEYS if rng.random() < 0.2][:1]
        chain.advance(txs, strict=False, absent=absent)
        balanced(chain)
        for k in AKEYS:
            nonces[AKEYS.index(k)] = chain.state.account(k.public_key).nonce
