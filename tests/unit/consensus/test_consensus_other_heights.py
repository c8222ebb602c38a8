"""Messages of other heights (issue 10): the next-height buffer takes only what could count there
(finding 5), and precommits that arrive after a decision grow its certificate (finding 9)."""

from __future__ import annotations

from consensus_harness import (
    CHAIN,
    KEYS,
    SCHEDULE,
    VALIDATORS,
    Harness,
    block,
    proposal,
    vote,
)

from fedray.consensus.engine import step
from fedray.consensus.messages import (
    BuildProposal,
    CertifiedBlock,
    CommitExtended,
    Decide,
    NewHeight,
    ProposalMessage,
    ScheduleTimeout,
    Start,
    TimeoutFired,
    VoteMessage,
)
from fedray.consensus.state import STEP_COMMIT
from fedray.core.block import NIL, PRECOMMIT, PREVOTE, CommitCertificate, Proposal, Vote
from fedray.core.crypto import key_from_seed
from fedray.core.encoding import digest

SCHEDULE2 = SCHEDULE.next_height(VALIDATORS)


def buffered(h: Harness) -> list[VoteMessage | ProposalMessage]:
    return [m for held in h.state.future.values() for m in held]


def junk_for_height_2(count: int) -> list[VoteMessage | ProposalMessage]:
    """What an attacker sends for the next height: forged signatures in every member's name,
    correctly signed votes of keys outside the set, and a member's own signed votes (as many as it
    likes, e.g. one per round), plus a proposal with a forged signature."""
    junk: list[VoteMessage | ProposalMessage] = []
    for i in range(count):
        member = KEYS[i % len(KEYS)].public_key
        junk.append(VoteMessage(Vote(PREVOTE, 2, 0, digest(b"%d" % i), member, b"\1" * 64)))
    for i in range(count // 8):
        outsider = key_from_seed(b"outsider %d" % i)
        junk.append(vote(outsider, PREVOTE, 0, digest(b"x"), height=2))
    byzantine = KEYS[3]
    junk += [vote(byzantine, PRECOMMIT, r, digest(b"r%d" % r), height=2) for r in range(count // 8)]
    b2 = block(7, height=2)
    forged = Proposal(2, 0, -1, b2.hash, SCHEDULE2.proposer(0), b"\2" * 64)
    junk.append(ProposalMessage(forged, b2))
    return junk


def decide_height_1(h: Harness, precommitters: int = 2) -> CommitCertificate:
    """Height 1 decided on our precommit and `precommitters` others'; returns the certificate."""
    b = block(1)
    h.feed(proposal(0, b))
    h.feed(*h.votes_from(PREVOTE, 0, b.hash, 2))
    out = h.feed(*h.votes_from(PRECOMMIT, 0, b.hash, precommitters))
    return next(i.certificate for i in out if isinstance(i, Decide))


# --- finding 5: the next-height buffer --------------------------------------------------------
def test_a_flood_of_junk_for_the_next_height_does_not_evict_a_signed_vote(
    harness: Harness,
) -> None:
    for message in junk_for_height_2(1024):
        harness.feed(message)
    honest = vote(KEYS[1], PREVOTE, 0, digest(b"block 2"), height=2)
    harness.feed(honest)
    held = buffered(harness)
    assert honest in held
    cfg = harness.state.config
    assert len(harness.state.future[KEYS[3].public_key]) == cfg.max_future_per_sender
    assert len(held) <= cfg.max_future_per_sender * len(KEYS)
    assert all(  # nothing forged and nothing from outside the set
        m.vote.validator in VALIDATORS and m.vote.is_valid(CHAIN)
        if isinstance(m, VoteMessage)
        else m.proposal.is_valid(CHAIN)
        for m in held
    )
    # The buffered vote counts once the height is reached.
    decide_height_1(harness)
    harness.feed(NewHeight(2, VALIDATORS))
    prevotes = harness.state.votes[(0, PREVOTE)]
    assert prevotes.has(honest.vote)


def test_a_signed_proposal_of_a_member_is_buffered_and_a_malformed_one_is_not(
    harness: Harness,
) -> None:
    key = next(k for k in KEYS if k.public_key == SCHEDULE2.proposer(0))
    b2 = block(7, height=2)
    good = proposal(0, b2, key=key, height=2)
    wrong_block = ProposalMessage(good.proposal, block(8, height=2))
    bad_pol = proposal(0, b2, pol_round=0, key=key, height=2)
    outsider = proposal(0, b2, key=key_from_seed(b"outsider"), height=2)
    harness.feed(wrong_block, bad_pol, outsider, good, good)
    assert buffered(harness) == [good]


def test_a_step_that_buffers_nothing_shares_the_buffer(harness: Harness) -> None:
    """The buffer is not copied by steps that leave it alone (the flooded no-op step cost 499 us)."""
    for k in KEYS[1:]:
        harness.feed(*(vote(k, PREVOTE, r, digest(b"%d" % r), height=2) for r in range(8)))
    before = harness.state
    after, _ = step(before, TimeoutFired(1, 5, PRECOMMIT))  # a stale timeout
    assert after.future is before.future
    extra = vote(KEYS[0], PREVOTE, 0, digest(b"mine"), height=2)
    grown, _ = step(before, extra)
    assert extra in [m for held in grown.future.values() for m in held]
    assert extra not in [m for held in before.future.values() for m in held]  # input untouched


# --- finding 9: late precommits ---------------------------------------------------------------
def test_late_precommits_grow_the_certificate_and_junk_does_not() -> None:
    h = Harness(next(k for k in KEYS if k.public_key != SCHEDULE2.proposer(0)))
    h.feed(Start())
    cert = decide_height_1(h)
    h.feed(NewHeight(2, VALIDATORS))
    late_key = next(k for k in KEYS if k.public_key not in cert.signers())
    b1 = cert.block_hash
    junk = [
        vote(late_key, PRECOMMIT, 1, b1),  # another round
        vote(late_key, PRECOMMIT, 0, digest(b"other")),  # another block
        vote(late_key, PRECOMMIT, 0, NIL),
        vote(late_key, PREVOTE, 0, b1),  # a prevote
        vote(key_from_seed(b"outsider"), PRECOMMIT, 0, b1),
        VoteMessage(Vote(PRECOMMIT, 1, 0, b1, late_key.public_key, b"\3" * 64)),  # forged
    ]
    for message in junk:
        assert not [i for i in h.feed(message) if isinstance(i, CommitExtended)]
    assert h.state.last_commit == cert
    late = vote(late_key, PRECOMMIT, 0, b1)
    grown = [i.certificate for i in h.feed(late) if isinstance(i, CommitExtended)]
    assert len(grown) == 1 and set(grown[0].signers()) == {k.public_key for k in KEYS}
    grown[0].verify(CHAIN, VALIDATORS, b1, 1)
    assert h.feed(late) == []  # a relayed copy changes nothing


def test_the_next_proposer_waits_for_late_precommits_at_most_commit_ms() -> None:
    me = next(k for k in KEYS if k.public_key == SCHEDULE2.proposer(0))
    h = Harness(me)
    h.feed(Start())
    cert = decide_height_1(h)
    out = h.feed(NewHeight(2, VALIDATORS))
    assert not [i for i in out if isinstance(i, BuildProposal)]
    pause = [i for i in out if isinstance(i, ScheduleTimeout) and i.step == STEP_COMMIT]
    assert [(t.height, t.round, t.duration_ms) for t in pause] == [(2, 0, 40)]
    out = h.feed(TimeoutFired(2, 0, STEP_COMMIT))
    assert [(i.height, i.round) for i in out if isinstance(i, BuildProposal)] == [(2, 0)]
    assert h.feed(TimeoutFired(2, 0, STEP_COMMIT)) == []  # asked once

    # Once every validator has signed there is nothing to wait for: build at once.
    h = Harness(me)
    h.feed(Start())
    cert = decide_height_1(h)
    h.feed(NewHeight(2, VALIDATORS))
    late_key = next(k for k in KEYS if k.public_key not in cert.signers())
    out = h.feed(vote(late_key, PRECOMMIT, 0, cert.block_hash))
    assert [type(i) for i in out if isinstance(i, CommitExtended | BuildProposal)] == [
        CommitExtended,
        BuildProposal,
    ]
    assert h.feed(TimeoutFired(2, 0, STEP_COMMIT)) == []


def test_a_certificate_from_catch_up_is_completed_with_the_precommits_we_hold() -> None:
    """Decided on a peer's certificate that lacks our own precommit: the next proposal's
    `last_commit` must not leave us out (nobody else will send us our own precommit)."""
    me = next(k for k in KEYS if k.public_key != SCHEDULE2.proposer(0))
    h = Harness(me)
    h.feed(Start())
    b = block(1)
    h.feed(proposal(0, b))
    h.feed(*h.votes_from(PREVOTE, 0, b.hash, 2))  # polka: we precommit b
    peers = CommitCertificate.from_votes([vote(k, PRECOMMIT, 0, b.hash).vote for k in h.others])
    out = h.feed(CertifiedBlock(b, peers))
    assert [i.certificate for i in out if isinstance(i, Decide)] == [peers]
    out = h.feed(NewHeight(2, VALIDATORS))
    grown = [i.certificate for i in out if isinstance(i, CommitExtended)]
    assert len(grown) == 1 and set(grown[0].signers()) == {k.public_key for k in KEYS}
    grown[0].verify(CHAIN, VALIDATORS, b.hash, 1)
