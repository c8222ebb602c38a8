"""Vote sets: integer thresholds, first votes, and how conflicting votes are counted."""

from __future__ import annotations

from consensus_harness import KEYS, block, vote
from hypothesis import given, settings
from hypothesis import strategies as st

from fedray.consensus.proposer import ProposerSchedule
from fedray.consensus.votes import EMPTY_VOTE_SET, is_one_third, is_quorum
from fedray.core.block import NIL, PREVOTE
from fedray.core.state import ValidatorSet


def test_thresholds_are_strict_integer_fractions() -> None:
    assert not is_quorum(2, 3) and is_quorum(3, 4) and not is_quorum(20, 30) and is_quorum(21, 30)
    assert not is_one_third(1, 3) and is_one_third(2, 4) and not is_one_third(10, 30)


def test_first_vote_counts_and_conflicts_count_only_when_they_matter() -> None:
    x, y = block(1).hash, block(2).hash
    a = [vote(k, PREVOTE, 0, x).vote for k in KEYS]
    vs = EMPTY_VOTE_SET
    for v in a[:2]:
        vs, earlier = vs.add(v, 10, count_conflict=True)
        assert earlier is None
    assert vs.power_for[x] == 20 and vs.power_any == 20 and not vs.quorum_for(x, 40)
    same, earlier = vs.add(a[0], 10, count_conflict=True)
    assert same is vs and earlier is None and vs.has(a[0])
    junk = vote(KEYS[0], PREVOTE, 0, y).vote
    kept, earlier = vs.add(junk, 10, count_conflict=False)
    assert kept is vs and earlier == a[0]  # evidence, but not counted
    counted, earlier = vs.add(junk, 10, count_conflict=True)
    assert earlier == a[0] and counted.power_for[y] == 10 and counted.power_any == 20
    assert counted.has(junk) and counted.votes_for(y) == [junk]
    counted, _ = counted.add(vote(KEYS[2], PREVOTE, 0, NIL).vote, 10, count_conflict=True)
    assert counted.power_any == 30 and counted.quorum_any(40) and counted.quorum_value(40) is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=6))
def test_proposer_shares_match_powers_exactly_over_full_cycles(powers: list[int]) -> None:
    v = ValidatorSet(tuple((bytes([i]) * 32, p) for i, p in enumerate(powers)))
    s = ProposerSchedule.genesis(v)
    counts = [0] * len(powers)
    for _ in range(2 * sum(powers)):
        counts[s.proposer0[0]] += 1
        s = s.next_height(v)
    assert counts == [2 * p for p in powers]
