"""Engine transitions, rule by rule (Algorithm 1 of arXiv:1807.04938), on one engine driven by hand."""

from __future__ import annotations

import copy

from consensus_harness import (
    CHAIN,
    KEYS,
    SCHEDULE,
    TIMEOUTS,
    VALIDATORS,
    Harness,
    block,
    proposal,
    proposer_key,
    sent_votes,
    timeouts,
    vote,
)

from fedray.consensus.engine import gossip, step
from fedray.consensus.messages import (
    Broadcast,
    BuildProposal,
    CertifiedBlock,
    Decide,
    NewHeight,
    PersistSignerState,
    ProposalMessage,
    Start,
    TimeoutFired,
    VoteMessage,
)
from fedray.consensus.signer import STEP_PRECOMMIT, STEP_PREVOTE, STEP_PROPOSE
from fedray.core.block import NIL, PRECOMMIT, PREVOTE, CommitCertificate, Vote
from fedray.core.crypto import key_from_seed


def reach_polka(h: Harness, round_: int, b_hash: bytes) -> list:
    """Two other validators prevote `b_hash`: with ours, a quorum (30 of 40)."""
    return h.feed(*h.votes_from(PREVOTE, round_, b_hash, 2))


def test_happy_path_commits_with_a_verifiable_certificate(harness: Harness) -> None:
    b = block(1)
    out = harness.feed(proposal(0, b))
    assert [(v.type, v.block_hash) for v in sent_votes(out)] == [(PREVOTE, b.hash)]  # L22
    out = reach_polka(harness, 0, b.hash)
    assert [(v.type, v.block_hash) for v in sent_votes(out)] == [(PRECOMMIT, b.hash)]  # L36
    assert (harness.state.locked_round, harness.state.locked_hash) == (0, b.hash)
    assert (harness.state.valid_round, harness.state.valid_hash) == (0, b.hash)
    out = harness.feed(*harness.votes_from(PRECOMMIT, 0, b.hash, 2))
    decides = [i for i in out if isinstance(i, Decide)]
    assert len(decides) == 1 and decides[0].block == b
    cert = decides[0].certificate
    cert.verify(CHAIN, VALIDATORS, b.hash, 1)
    assert CommitCertificate.from_bytes(cert.to_bytes()) == cert


def test_signer_state_is_persisted_before_every_signed_broadcast(harness: Harness) -> None:
    b = block(1)
    harness.feed(proposal(0, b))
    reach_polka(harness, 0, b.hash)
    persisted = None
    for item in harness.outbox:
        if isinstance(item, PersistSignerState):
            persisted = item.signer
        elif isinstance(item, Broadcast):
            assert persisted is not None and persisted.last == item.message.vote
    assert harness.state.signer == persisted


def test_proposer_builds_signs_and_prevotes_its_block() -> None:
    me = proposer_key(0)
    h = Harness(me)
    out = h.feed(Start())
    assert isinstance(out[0], BuildProposal) and out[0].proposer == me.public_key
    kinds = [type(i).__name__ for i in out]
    # persist -> broadcast proposal, then persist -> broadcast prevote
    i = kinds.index("Broadcast")
    assert kinds[i - 1] == "PersistSignerState"
    assert isinstance(out[i], Broadcast) and isinstance(out[i].message, ProposalMessage)
    built = out[i].message.block
    assert [v.block_hash for v in sent_votes(out)] == [built.hash]


def test_invalid_proposal_gets_a_nil_prevote(harness: Harness) -> None:
    b = block(1)
    harness.invalid.add(b.hash)
    out = harness.feed(proposal(0, b))
    assert [(v.type, v.block_hash) for v in sent_votes(out)] == [(PREVOTE, NIL)]


def test_propose_timeout_gives_a_nil_prevote_and_stale_timeouts_are_ignored(
    harness: Harness,
) -> None:
    assert harness.feed(TimeoutFired(1, 5, STEP_PROPOSE)) == []  # another round: stale
    out = harness.feed(TimeoutFired(1, 0, STEP_PROPOSE))  # L57
    assert [(v.type, v.block_hash) for v in sent_votes(out)] == [(PREVOTE, NIL)]
    assert harness.state.step == STEP_PREVOTE
    assert sent_votes(harness.feed(TimeoutFired(1, 0, STEP_PROPOSE))) == []  # only once


def test_prevote_timeout_after_any_polka_then_nil_precommit(harness: Harness) -> None:
    harness.feed(TimeoutFired(1, 0, STEP_PROPOSE))
    out = harness.feed(
        vote(harness.others[0], PREVOTE, 0, NIL), vote(harness.others[1], PREVOTE, 0, block(7).hash)
    )
    # 2/3 prevotes for different things: L34 starts the prevote timer, no precommit yet
    assert [(t.step, t.duration_ms) for t in timeouts(out)] == [(STEP_PREVOTE, TIMEOUTS.prevote_ms)]
    assert sent_votes(out) == []
    out = harness.feed(TimeoutFired(1, 0, STEP_PREVOTE))  # L61
    assert [(v.type, v.block_hash) for v in sent_votes(out)] == [(PRECOMMIT, NIL)]


def test_nil_polka_precommits_nil_at_once(harness: Harness) -> None:
    harness.feed(TimeoutFired(1, 0, STEP_PROPOSE))
    out = harness.feed(*harness.votes_from(PREVOTE, 0, NIL, 2))  # L44
    assert [(v.type, v.block_hash) for v in sent_votes(out)] == [(PRECOMMIT, NIL)]
    assert harness.state.locked_round == -1


def test_precommit_timeout_starts_the_next_round_with_longer_timeouts(harness: Harness) -> None:
    for r in range(3):
        harness.feed(TimeoutFired(1, r, STEP_PROPOSE))
        harness.feed(*harness.votes_from(PREVOTE, r, NIL, 2))
        out = harness.feed(*harness.votes_from(PRECOMMIT, r, NIL, 2))  # L47
        assert [t.step for t in timeouts(out)] == [STEP_PRECOMMIT]
        assert (
            timeouts(out)[0].duration_ms == TIMEOUTS.precommit_ms + r * TIMEOUTS.precommit_delta_ms
        )
        out = harness.feed(TimeoutFired(1, r, STEP_PRECOMMIT))  # L65
        assert harness.state.round == r + 1  # (we propose round 3, so we may have prevoted)
        propose_timeout = [t for t in timeouts(out) if t.step == STEP_PROPOSE][0]
        assert (
            propose_timeout.duration_ms == TIMEOUTS.propose_ms + (r + 1) * TIMEOUTS.propose_delta_ms
        )
    assert harness.state.decision is None


def lock_on(h: Harness, round_: int, tag: int) -> bytes:
    b = block(tag)
    h.feed(proposal(round_, b))
    reach_polka(h, round_, b.hash)
    assert h.state.locked_hash == b.hash and h.state.locked_round == round_
    h.feed(*h.votes_from(PRECOMMIT, round_, NIL, 2))  # no decision: the others precommitted nil
    h.feed(TimeoutFired(1, round_, STEP_PRECOMMIT))
    assert h.state.round == round_ + 1
    return b.hash


def test_locked_validator_prevotes_nil_for_another_fresh_value(harness: Harness) -> None:
    x = lock_on(harness, 0, 1)
    out = harness.feed(proposal(1, block(2)))
    assert [(v.round, v.block_hash) for v in sent_votes(out)] == [(1, NIL)]
    assert harness.state.locked_hash == x


def test_locked_validator_prevotes_its_locked_value_again(harness: Harness) -> None:
    x = lock_on(harness, 0, 1)
    out = harness.feed(proposal(1, block(1)))  # the same block, re-proposed without a POL
    assert [(v.round, v.block_hash) for v in sent_votes(out)] == [(1, x)]


def test_unlocks_on_a_newer_proof_of_lock_change(harness: Harness) -> None:
    lock_on(harness, 0, 1)
    y = block(2)
    harness.feed(*harness.votes_from(PREVOTE, 1, NIL, 0))
    # round 1 ends without us, round 2 re-proposes y with its polka from round 1
    harness.feed(TimeoutFired(1, 1, STEP_PROPOSE))
    harness.feed(*[vote(k, PREVOTE, 1, y.hash) for k in harness.others])  # a polka for y in round 1
    harness.feed(*harness.votes_from(PRECOMMIT, 1, NIL, 2))
    harness.feed(TimeoutFired(1, 1, STEP_PRECOMMIT))
    out = harness.feed(proposal(2, y, pol_round=1))  # L28: vr=1 >= lockedRound=0
    assert [(v.round, v.block_hash) for v in sent_votes(out)] == [(2, y.hash)]
    out = reach_polka(harness, 2, y.hash)
    assert [(v.type, v.block_hash) for v in sent_votes(out)] == [(PRECOMMIT, y.hash)]
    assert (harness.state.locked_round, harness.state.locked_hash) == (2, y.hash)


def test_a_proof_of_lock_older_than_the_lock_does_not_unlock(harness: Harness) -> None:
    y = block(2)
    harness.feed(TimeoutFired(1, 0, STEP_PROPOSE))
    harness.feed(*[vote(k, PREVOTE, 0, y.hash) for k in harness.others])  # polka for y, round 0
    harness.feed(*harness.votes_from(PRECOMMIT, 0, NIL, 3))
    harness.feed(TimeoutFired(1, 0, STEP_PRECOMMIT))
    lock_on(harness, 1, 1)  # locked in round 1 on x
    out = harness.feed(proposal(2, y, pol_round=0))  # POL round 0 < lockedRound 1
    assert [(v.round, v.block_hash) for v in sent_votes(out)] == [(2, NIL)]


def test_a_proposal_whose_pol_is_missing_waits_then_times_out(harness: Harness) -> None:
    out = harness.feed(proposal(0, block(1), pol_round=-1))
    harness.feed(*harness.votes_from(PREVOTE, 0, NIL, 2))
    harness.feed(*harness.votes_from(PRECOMMIT, 0, NIL, 3))
    harness.feed(TimeoutFired(1, 0, STEP_PRECOMMIT))
    out = harness.feed(proposal(1, block(2), pol_round=0))  # no polka for it in round 0
    assert sent_votes(out) == []
    out = harness.feed(TimeoutFired(1, 1, STEP_PROPOSE))
    assert [(v.round, v.block_hash) for v in sent_votes(out)] == [(1, NIL)]


def test_f_plus_one_messages_from_a_later_round_skip_there(harness: Harness) -> None:
    harness.feed(vote(harness.others[0], PREVOTE, 5, NIL))  # 10 of 40: not more than 1/3
    assert harness.state.round == 0
    harness.feed(vote(harness.others[1], PRECOMMIT, 5, NIL))  # 20 of 40: more than 1/3 (L55)
    assert harness.state.round == 5 and harness.state.step == STEP_PROPOSE


def test_commit_in_a_later_round(harness: Harness) -> None:
    harness.feed(TimeoutFired(1, 0, STEP_PROPOSE))
    harness.feed(*harness.votes_from(PREVOTE, 0, NIL, 2))
    harness.feed(*harness.votes_from(PRECOMMIT, 0, NIL, 2))
    harness.feed(TimeoutFired(1, 0, STEP_PRECOMMIT))
    b = block(3)
    harness.feed(proposal(1, b))
    reach_polka(harness, 1, b.hash)
    out = harness.feed(*harness.votes_from(PRECOMMIT, 1, b.hash, 2))
    (decide,) = [i for i in out if isinstance(i, Decide)]
    assert decide.certificate.round == 1 and decide.block == b
    decide.certificate.verify(CHAIN, VALIDATORS, b.hash, 1)


def test_decides_on_precommits_of_an_earlier_round(harness: Harness) -> None:
    b = block(1)
    harness.feed(proposal(0, b))
    harness.feed(*harness.votes_from(PREVOTE, 2, NIL, 2))  # f+1 in round 2: skip there
    assert harness.state.round == 2
    # precommits of round 0 for b arrive late (the others saw a polka we missed): L49, any round
    out = harness.feed(*harness.votes_from(PRECOMMIT, 0, b.hash, 3))
    (decide,) = [i for i in out if isinstance(i, Decide)]
    assert decide.block == b and decide.certificate.round == 0
    decide.certificate.verify(CHAIN, VALIDATORS, b.hash, 1)


def test_certified_block_from_a_peer_is_verified_before_deciding(harness: Harness) -> None:
    b = block(9)
    votes = [vote(k, PRECOMMIT, 0, b.hash).vote for k in KEYS[:2]]
    weak = CommitCertificate.from_votes(votes)  # 20 of 40: not a quorum
    assert not [i for i in harness.feed(CertifiedBlock(b, weak)) if isinstance(i, Decide)]
    strong = CommitCertificate.from_votes(votes + [vote(KEYS[2], PRECOMMIT, 0, b.hash).vote])
    out = harness.feed(CertifiedBlock(b, strong))
    assert [i.block for i in out if isinstance(i, Decide)] == [b]


def test_new_height_resets_and_replays_buffered_messages(harness: Harness) -> None:
    b = block(1)
    b2 = block(5, height=2)
    harness.feed(proposal(0, b))
    reach_polka(harness, 0, b.hash)
    sched2 = SCHEDULE.next_height(VALIDATORS)
    p2 = proposal(0, b2, key=next(k for k in KEYS if k.public_key == sched2.proposer(0)), height=2)
    harness.feed(p2)  # for height 2: buffered
    harness.feed(*harness.votes_from(PRECOMMIT, 0, b.hash, 2))
    assert harness.state.decision == b
    out = harness.feed(NewHeight(2, VALIDATORS))
    s = harness.state
    assert (s.height, s.round, s.locked_round, s.decision) == (2, 0, -1, None)
    assert s.schedule == sched2
    assert sched2.proposer(0) != harness.me.public_key  # so the buffered proposal is prevoted
    assert [(v.height, v.block_hash) for v in sent_votes(out)] == [(2, b2.hash)]


def test_step_is_pure_and_deterministic(harness: Harness) -> None:
    before = copy.deepcopy(harness.state)
    event = proposal(0, block(1))
    s1, out1 = step(harness.state, event)
    s2, out2 = step(harness.state, event)
    assert harness.state == before  # the input state is untouched
    assert (s1, out1) == (s2, out2)


def test_junk_is_ignored(harness: Harness) -> None:
    b = block(1)
    state = harness.state
    good = vote(harness.others[0], PREVOTE, 0, b.hash).vote
    forged = VoteMessage(Vote(PREVOTE, 1, 0, block(2).hash, good.validator, good.signature))
    outsider = vote(key_from_seed(b"outsider"), PREVOTE, 0, b.hash)
    wrong_proposer = proposal(0, b, key=next(k for k in KEYS if k is not proposer_key(0)))
    for junk in (forged, outsider, wrong_proposer):
        new, out = step(state, junk)
        assert out == () and new.votes == state.votes and new.proposals == state.proposals
    dup = vote(harness.others[0], PREVOTE, 0, b.hash)
    s1, _ = step(state, dup)
    s2, out = step(s1, dup)
    assert s2 is s1 and out == ()


def test_gossip_resends_the_precommits_of_a_round_we_left(harness: Harness) -> None:
    """Issue 12, fix 2: a node that moved on must keep resending its precommit of the round it
    left, or peers still in that round may never see 2f+1 precommits and stall there."""
    harness.feed(TimeoutFired(1, 0, STEP_PROPOSE))  # no proposal: prevote nil
    harness.feed(*harness.votes_from(PREVOTE, 0, NIL, 2))  # nil polka: precommit nil
    harness.feed(*harness.votes_from(PRECOMMIT, 0, NIL, 2))  # 2f+1 precommits: timer
    harness.feed(TimeoutFired(1, 0, STEP_PRECOMMIT))
    assert harness.state.round == 1
    resent = [m.vote for m in gossip(harness.state) if isinstance(m, VoteMessage)]
    assert harness.me is not None
    round0 = {v.validator for v in resent if (v.round, v.type) == (0, PRECOMMIT)}
    assert round0 == {harness.me.public_key, *(k.public_key for k in harness.others[:2])}
