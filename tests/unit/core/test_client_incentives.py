"""Client rewards and learning penalties as contracts decide them from a closed round's verdicts:
who is paid and in what shares, which flags withhold a reward, which count toward slashing, and
that statistical signals alone never take stake."""

from __future__ import annotations

import fedray.core  # noqa: F401
from fedray.core.context import ExecContext
from fedray.core.contracts.economy import account_total, supply_identity
from fedray.core.contracts.incentives import reward_clients
from fedray.core.contracts.rounds import RoundResult, UpdateRecord
from fedray.core.contracts.slashing import judge_round
from fedray.core.devchain import dev_genesis
from fedray.core.journal import Journal
from fedray.core.precompiles import (
    FLAG_COS_LOW,
    FLAG_NEAR_COPY,
    FLAG_NORM,
    FLAG_OPPOSED,
    FLAG_REJECTED,
    FLAG_UNCORRELATED,
    FLAG_ZERO,
    UpdateVerdict,
)
from fedray.core.state import Params

PARAMS = Params(reward_pool=1_000_000, reward_participation_bps=5_000)
GENESIS, VKEYS, AKEYS = dev_genesis("fedray-incentives", n_accounts=6, params=PARAMS)
CLIENTS = [k.public_key for k in AKEYS]
CTX = ExecContext(height=5, time=GENESIS.genesis_time + 5000, proposer=VKEYS[0].public_key)
SUPPLY = account_total(GENESIS.state().accounts.accounts.values())


def verdict(
    i: int, *, weight: int = 10_000, flags: int = 0, contribution: int = 0
) -> UpdateVerdict:
    accepted = weight > 0
    return UpdateVerdict(
        bytes([i]) * 32, accepted, False, not accepted, weight, 0, flags, 0, contribution
    )


def result(round_: int, verdicts: list[UpdateVerdict]) -> RoundResult:
    updates = tuple(
        UpdateRecord(CLIENTS[i], bytes([round_, i]) * 16, 10, 1024, bytes([i]) * 32)
        for i in range(len(verdicts))
    )
    return RoundResult(round_, 1, 2, "quota", b"", b"", tuple(CLIENTS), updates, tuple(verdicts))


def earned(journal: Journal) -> list[int]:
    start = GENESIS.state()
    return [journal.account_or_empty(k).balance - start.account(k).balance for k in CLIENTS]


def test_rewards_split_equally_then_by_positive_contribution() -> None:
    journal = Journal(GENESIS.state())
    verdicts = [
        verdict(0, contribution=30_000),
        verdict(1, contribution=10_000),
        verdict(2, contribution=-5_000, flags=FLAG_COS_LOW),  # points away: equal part only
        verdict(3, weight=0, flags=FLAG_REJECTED, contribution=0),  # the rule dropped it
        verdict(4, contribution=50_000, flags=FLAG_NORM),  # far too long: nothing this round
        verdict(5, contribution=0, flags=FLAG_ZERO),
    ]
    reward_clients(journal, result(0, verdicts), CTX)
    equal = 500_000 // 3
    rest = 1_000_000 - 3 * equal  # what the equal split leaves goes by contribution
    assert earned(journal) == [equal + rest * 3 // 4, equal + rest // 4, equal, 0, 0, 0]
    minted = journal.section("economy").minted
    assert minted == sum(earned(journal)) and minted <= PARAMS.reward_pool


def test_no_positive_contribution_mints_only_the_equal_part() -> None:
    journal = Journal(GENESIS.state())
    reward_clients(journal, result(0, [verdict(0, contribution=-1), verdict(1)]), CTX)
    assert earned(journal)[:2] == [250_000, 250_000]
    assert journal.section("economy").minted == 500_000


def test_statistical_signals_alone_never_take_stake() -> None:
    """Pointing away from the aggregate, being dropped by the rule, being long, or long and
    opposed: honest clients do all of it (rare labels, data the model keeps forgetting). It costs
    them rewards, never stake."""
    journal = Journal(GENESIS.state())
    signals = [FLAG_COS_LOW, FLAG_REJECTED | FLAG_COS_LOW, FLAG_NORM, FLAG_OPPOSED | FLAG_COS_LOW]
    for r in range(40):
        flags = signals[r % 4]
        judge_round(
            journal, result(r, [verdict(0, weight=0 if r % 4 == 1 else 1, flags=flags)]), CTX
        )
    assert not journal.section("penalties")


def test_evidence_in_k_of_w_rounds_slashes_and_jails_once() -> None:
    journal = Journal(GENESIS.state())
    stake = journal.account_or_empty(CLIENTS[0]).stake
    copy = FLAG_NEAR_COPY
    pattern = [copy, 0, 0, 0, copy, 0, copy | FLAG_OPPOSED]  # never 3 in 5 rounds
    for r, flags in enumerate(pattern):
        judge_round(journal, result(r, [verdict(0, flags=flags)]), CTX)
    assert not journal.section("penalties")
    judge_round(journal, result(7, [verdict(0, flags=copy)]), CTX)  # rounds 3..7 hold 3
    (record,) = journal.section("penalties").values()
    assert record.kind == "flagged_updates" and record.offender == CLIENTS[0]
    assert record.jailed_until == CTX.height + PARAMS.flagged_jail_blocks
    assert journal.account_or_empty(CLIENTS[0]).stake == stake - stake * 1_000 // 10_000
    judge_round(journal, result(8, [verdict(0, flags=copy)]), CTX)  # the evidence was spent
    assert len(journal.section("penalties")) == 1


def test_zero_updates_are_penalized_every_round_and_noise_in_k_of_w() -> None:
    journal = Journal(GENESIS.state())
    for r in range(2):  # a zero update is provable on its own
        judge_round(journal, result(r, [verdict(0, flags=FLAG_ZERO)]), CTX)
    records = list(journal.section("penalties").values())
    assert [p.kind for p in records] == ["free_riding", "free_riding"]
    assert all(p.jailed_until == 0 for p in records)
    for r in range(3):  # noise is statistical: 3 rounds of it in 5
        judge_round(journal, result(r, [verdict(0), verdict(1, flags=FLAG_UNCORRELATED)]), CTX)
        assert len(journal.section("penalties")) == (2 if r < 2 else 3)
    (noise,) = [p for p in journal.section("penalties").values() if p.offender == CLIENTS[1]]
    assert noise.kind == "flagged_updates" and noise.jailed_until > 0
    state = journal.finish(height=CTX.height)
    exists, booked = supply_identity(state, SUPPLY)
    assert exists == booked
