"""State transition properties beyond the vectors: atomicity, determinism, proposer selection of
transactions, block limits."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

import fedray.core  # noqa: F401
from fedray.core.context import ExecContext
from fedray.core.contracts.accounts import Stake, Transfer, Unstake
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.transition import apply_block, select_txs
from fedray.core.tx import make_tx

GENESIS, VKEYS, AKEYS = dev_genesis("fedray-props", n_accounts=6)
CHAIN = GENESIS.chain_id


def random_txs(rng: random.Random, nonces: list[int], count: int) -> list[bytes]:
    """A mix of valid and invalid transactions (bad nonces, overdrafts)."""
    txs = []
    for _ in range(count):
        i = rng.randrange(len(AKEYS))
        nonce = nonces[i] + rng.choice([0, 0, 0, 0, -1, 1])
        kind = rng.choice(["transfer", "transfer", "stake", "unstake"])
        amount = rng.choice([1, 10, 1000, 2_000_000])
        if kind == "transfer":
            payload = Transfer(AKEYS[rng.randrange(len(AKEYS))].public_key, amount)
        elif kind == "stake":
            payload = Stake(amount)
        else:
            payload = Unstake(amount)
        if nonce < 0:
            continue
        txs.append(make_tx(AKEYS[i], CHAIN, nonce, payload).raw)
        if nonce == nonces[i]:
            nonces[i] += 1
    return txs


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32))
def test_same_blocks_same_roots(seed: int) -> None:
    rng = random.Random(seed)
    chain = DevChain(GENESIS, VKEYS)
    nonces = [0] * len(AKEYS)
    for _ in range(4):
        chain.advance(random_txs(rng, nonces, 12), strict=False)
    # An independent replay from genesis reaches byte-identical roots at every height.
    state = GENESIS.state()
    for block, expected in zip(chain.blocks, chain.states[1:], strict=True):
        state = apply_block(state, block)
        assert state.root() == expected.root()
        assert state.to_bytes() == expected.to_bytes()
    # apply_block is a function: the same input twice gives the same output.
    again = apply_block(chain.states[-2], chain.blocks[-1])
    assert again.root() == chain.state.root()


def test_select_txs_skips_invalid_and_undoes_partial_writes() -> None:
    state = GENESIS.state()
    a, b = AKEYS[0], AKEYS[1]
    ctx = ExecContext(1, state.last_block_time + 1, VKEYS[0].public_key)
    good1 = make_tx(a, CHAIN, 0, Transfer(b.public_key, 5)).raw
    overdraft = make_tx(a, CHAIN, 1, Transfer(b.public_key, 10**9)).raw  # fee charged, then fails
    good2 = make_tx(a, CHAIN, 1, Transfer(b.public_key, 6)).raw
    kept, rejected = select_txs(state, [good1, overdraft, good2], ctx)
    assert kept == [good1, good2]
    assert [raw for raw, _ in rejected] == [overdraft]
    assert rejected[0][1].code == "insufficient_balance"
    chain = DevChain(GENESIS, VKEYS)
    chain.advance(kept)
    sender = chain.state.account(a.public_key)
    assert sender.nonce == 2  # the failed overdraft consumed no nonce and paid no fee
    fee_total = GENESIS.state().account(a.public_key).balance - sender.balance - 11
    assert fee_total > 0


def test_validator_set_follows_stake() -> None:
    chain = DevChain(GENESIS, VKEYS)
    v = VKEYS[0]
    stake = chain.state.account(v.public_key).stake
    chain.advance([make_tx(v, CHAIN, 0, Unstake(stake)).raw])
    assert v.public_key not in chain.state.validators
    assert v.public_key in chain.state.last_validators
    assert len(chain.state.validators) == 3
