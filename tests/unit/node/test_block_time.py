"""Finding 3: a Byzantine proposer cannot push block time out of bounds (2**64-1 halted the chain),
and honest proposers never produce a time the rules refuse, however far their clock has moved."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedray.core.beacon import prove_next
from fedray.core.block import Block, make_block, proposal_time
from fedray.core.crypto import PrivateKey
from fedray.core.devchain import certify, dev_genesis
from fedray.core.encoding import UINT64_MAX
from fedray.core.state import Genesis
from fedray.core.transition import apply_block
from fedray.errors import BlockTimeError, FedrayError
from fedray.node.app import LedgerApp
from fedray.node.timeliness import Timeliness

CHAIN = "time-test"
GENESIS, VKEYS, _ = dev_genesis(CHAIN, n_validators=4, n_accounts=0)
STEP = GENESIS.params.max_block_time_step_ms
T0 = GENESIS.genesis_time


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def byzantine_block(app: LedgerApp, key: PrivateKey, time: int) -> Block:
    """A block valid in every respect but its time, proposed by `key`."""
    s = app.state
    return make_block(
        CHAIN,
        s.height + 1,
        time,
        s.last_block_hash,
        s.root(),
        key.public_key,
        s.validators,
        (),
        app.last_commit,
        (),
        prove_next(key, s),
    )


def commit(apps: list[LedgerApp], block: Block) -> None:
    cert = certify(block, VKEYS, CHAIN)
    for app in apps:
        app.finalize_block(block, cert)
        app.commit()


def node(path: Path, i: int, clock: Clock | None, genesis: Genesis = GENESIS) -> LedgerApp:
    return LedgerApp(path / f"v{i}", genesis, keys=[VKEYS[i]], clock=clock)


def test_a_time_of_2_64_minus_1_is_refused_and_the_next_proposal_works(tmp_path: Path) -> None:
    clock = Clock(T0 + 1000)
    honest = node(tmp_path, 0, clock)
    byzantine = VKEYS[1]
    attack = byzantine_block(honest, byzantine, UINT64_MAX)
    with pytest.raises(BlockTimeError):  # the deterministic rule: replay refuses it too
        apply_block(honest.state, attack)
    assert not honest.process_proposal(attack)  # so every honest validator prevotes nil
    # The honest proposal that follows is valid and does not overflow.
    block = honest.prepare_proposal(1, 1, VKEYS[0].public_key, clock())
    assert block.header.time == T0 + 1000
    assert honest.process_proposal(block)
    honest.close()


def test_a_time_far_ahead_of_the_clock_gets_no_honest_prevote(tmp_path: Path) -> None:
    """Within the step but a minute ahead of every honest clock: the deterministic rule allows
    it (a replaying node cannot judge clocks), the timeliness check refuses it."""
    clock = Clock(T0 + 1000)
    honest, replaying = node(tmp_path, 0, clock), node(tmp_path, 2, None)
    ahead = byzantine_block(honest, VKEYS[1], T0 + 1000 + 60_000)
    assert not honest.process_proposal(ahead)
    assert replaying.process_proposal(ahead)
    slightly = byzantine_block(honest, VKEYS[1], T0 + 1000 + Timeliness().precision_ms)
    assert honest.process_proposal(slightly)
    # Decided without our prevote (catch-up): only the deterministic rule applies, never fatal.
    commit([honest, replaying], ahead)
    assert honest.height == 1
    nxt = honest.prepare_proposal(2, 0, VKEYS[0].public_key, clock())
    assert nxt.header.time == ahead.header.time + 1  # after its parent, whatever the clock says
    assert replaying.process_proposal(nxt)
    for app in (honest, replaying):
        app.close()


def test_after_a_long_halt_time_catches_up_one_step_per_block(tmp_path: Path) -> None:
    clock = Clock(T0 + 10 * STEP)  # the chain stood still for ten steps
    proposer, checker = node(tmp_path, 0, clock), node(tmp_path, 2, clock)
    for height in (1, 2):
        block = proposer.prepare_proposal(height, 0, VKEYS[0].public_key, clock())
        assert block.header.time == T0 + height * STEP  # capped by the rule ...
        assert checker.process_proposal(block)  # ... and not refused as lagging
        commit([proposer, checker], block)
    lagging = byzantine_block(checker, VKEYS[1], checker.state.last_block_time + 1)
    assert not checker.process_proposal(lagging)  # a later time was allowed and not chosen
    for app in (proposer, checker):
        app.close()


def test_an_app_proposes_only_for_keys_it_holds(tmp_path: Path) -> None:
    app = node(tmp_path, 0, None)
    with pytest.raises(FedrayError):
        app.prepare_proposal(1, 0, VKEYS[1].public_key, T0 + 1)
    app.close()


@given(st.integers(0, 2**53), st.integers(1, 2**32 - 1), st.integers(0, UINT64_MAX))
def test_proposal_time_always_obeys_the_rule(last: int, step: int, now: int) -> None:
    t = proposal_time(last, step, now)
    assert last < t <= last + step


def test_timeliness_bounds() -> None:
    bounds = Timeliness(precision_ms=500, max_lag_ms=60_000)
    now, last = 10**12, 10**12 - 100_000
    assert bounds.refusal(now + 500, last, STEP, now) is None
    assert bounds.refusal(now + 501, last, STEP, now) is not None
    assert bounds.refusal(now - 60_000, last, STEP, now) is None
    assert bounds.refusal(now - 60_001, last, STEP, now) is not None
    halted = now - 10 * STEP  # the chain stood still: the latest time the rule allows lags
    assert bounds.refusal(halted + STEP, halted, STEP, now) is None
    assert bounds.refusal(halted + STEP - 1, halted, STEP, now) is not None


def test_genesis_refuses_a_zero_step_and_times_or_periods_near_2_64() -> None:
    import dataclasses

    with pytest.raises(FedrayError):
        dataclasses.replace(GENESIS, genesis_time=UINT64_MAX - 10).state()
    for change in ({"max_block_time_step_ms": 0}, {"downtime_jail_blocks": UINT64_MAX}):
        params = dataclasses.replace(GENESIS.params, **change)
        with pytest.raises(FedrayError):  # a period near 2**64 would overflow height + period
            dataclasses.replace(GENESIS, params=params).state()
