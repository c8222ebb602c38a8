"""Equivocation evidence: produced exactly for two conflicting signed messages of one validator in
one slot, never for honest duplicates, and carried and recorded by a later block."""

from __future__ import annotations

from consensus_harness import CHAIN, Harness, block, proposal, proposer_key, vote

from fedray.consensus.messages import EvidenceFound
from fedray.core.block import NIL, PRECOMMIT, PREVOTE
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.evidence import DUPLICATE_PROPOSAL, DUPLICATE_VOTE, Evidence


def evidence_of(out: list) -> list[Evidence]:
    return [i.evidence for i in out if isinstance(i, EvidenceFound)]


def test_double_vote_gives_one_verifiable_evidence(harness: Harness) -> None:
    cheat = harness.others[0]
    a, b = block(1).hash, block(2).hash
    harness.feed(proposal(0, block(1)))
    assert evidence_of(harness.feed(vote(cheat, PREVOTE, 0, a))) == []
    (ev,) = evidence_of(harness.feed(vote(cheat, PREVOTE, 0, NIL)))
    assert ev.kind == DUPLICATE_VOTE and ev.offender == cheat.public_key and ev.height == 1
    ev.verify(CHAIN)
    assert Evidence.from_bytes(ev.to_bytes()) == ev
    # more conflicts in the same slot: no second record of the same misbehaviour
    assert evidence_of(harness.feed(vote(cheat, PREVOTE, 0, b))) == []


def test_honest_traffic_gives_no_evidence(harness: Harness) -> None:
    k = harness.others[0]
    x = block(1).hash
    msgs = [
        vote(k, PREVOTE, 0, x),
        vote(k, PREVOTE, 0, x),  # a duplicate delivery
        vote(k, PRECOMMIT, 0, NIL),  # another step
        vote(k, PREVOTE, 1, NIL),
        vote(k, PREVOTE, 0, x, height=2),
    ]
    p = proposal(0, block(1))
    assert evidence_of(harness.feed(*msgs, p, p)) == []


def test_equivocating_proposer_gives_proposal_evidence(harness: Harness) -> None:
    p1, p2 = proposal(0, block(1)), proposal(0, block(2))
    assert evidence_of(harness.feed(p1)) == []
    (ev,) = evidence_of(harness.feed(p2))
    assert ev.kind == DUPLICATE_PROPOSAL and ev.offender == proposer_key(0).public_key
    ev.verify(CHAIN)


def test_evidence_is_canonical_whatever_the_arrival_order() -> None:
    a, b = Harness(proposer_key(3)), Harness(proposer_key(3))
    cheat = a.others[0]
    v1, v2 = vote(cheat, PREVOTE, 0, NIL), vote(cheat, PREVOTE, 0, block(1).hash)
    a.feed(block_msg := proposal(0, block(1)))
    b.feed(block_msg)
    (e1,) = evidence_of(a.feed(v1, v2))
    (e2,) = evidence_of(b.feed(v2, v1))
    assert e1 == e2 and e1.hash() == e2.hash()


def test_a_later_block_carries_the_evidence_and_the_core_records_it() -> None:
    genesis, vkeys, _ = dev_genesis(CHAIN, n_validators=4, n_accounts=0)
    chain = DevChain(genesis, vkeys)
    chain.advance()
    cheat = vkeys[1]
    v1 = vote(cheat, PREVOTE, 1, NIL).vote
    v2 = vote(cheat, PREVOTE, 1, chain.blocks[0].hash).vote
    ev = Evidence.of(v1, v2)
    block2 = chain.propose(evidence=[ev.to_bytes()])
    state = chain.commit(block2)
    (record,) = state.section("evidence").values()
    assert record.offender == cheat.public_key and record.height == 1 and record.included_at == 2
