"""Signer safety: never sign lower or conflicting after a restart, keep the lock, survive a reopen."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from consensus_harness import CHAIN, KEYS, Harness, block, proposal, proposer_key, sent_votes, vote

from fedray.consensus.driver import file_signer_store
from fedray.consensus.messages import Broadcast, ProposalMessage, Start, TimeoutFired
from fedray.consensus.signer import (
    STEP_PRECOMMIT,
    STEP_PROPOSE,
    SignerRefusedError,
    SignerState,
    sign_proposal,
    sign_vote,
)
from fedray.core.block import NIL, PRECOMMIT, PREVOTE, Proposal, Vote
from fedray.errors import StorageError

KEY = KEYS[0]


def v(type_: int, height: int, round_: int, h: bytes = NIL) -> Vote:
    return Vote(type_, height, round_, h, KEY.public_key)


def test_slots_must_grow_and_a_slot_signs_one_message() -> None:
    b = block(1)
    s = SignerState()
    s, _ = sign_proposal(s, KEY, CHAIN, Proposal(1, 0, -1, b.hash, KEY.public_key))
    s, pv = sign_vote(s, KEY, CHAIN, v(PREVOTE, 1, 0, b.hash))
    assert s.slot == (1, 0, PREVOTE)
    same, again = sign_vote(s, KEY, CHAIN, v(PREVOTE, 1, 0, b.hash))  # identical: re-emitted
    assert same is s and again == pv
    with pytest.raises(SignerRefusedError, match="different message"):
        sign_vote(s, KEY, CHAIN, v(PREVOTE, 1, 0, NIL))
    with pytest.raises(SignerRefusedError, match="below"):
        sign_proposal(s, KEY, CHAIN, Proposal(1, 0, -1, b.hash, KEY.public_key))
    with pytest.raises(SignerRefusedError, match="below"):
        sign_vote(s, KEY, CHAIN, v(PRECOMMIT, 0, 9))
    s, _ = sign_vote(s, KEY, CHAIN, v(PREVOTE, 1, 3))  # a later round is fine
    assert s.slot == (1, 3, PREVOTE)


def test_precommit_for_a_value_locks_on_its_block_and_a_new_height_unlocks() -> None:
    b = block(1)
    s, _ = sign_vote(SignerState(), KEY, CHAIN, v(PREVOTE, 1, 0, b.hash))
    with pytest.raises(SignerRefusedError, match="needs that block"):
        sign_vote(s, KEY, CHAIN, v(PRECOMMIT, 1, 0, b.hash))
    s, _ = sign_vote(s, KEY, CHAIN, v(PRECOMMIT, 1, 0, b.hash), b)
    assert (s.locked_round, s.locked_hash, s.locked_block) == (0, b.hash, b)
    s, _ = sign_vote(s, KEY, CHAIN, v(PRECOMMIT, 1, 1, NIL))  # a nil precommit keeps the lock
    assert s.locked_hash == b.hash and len(s.votes) == 3
    s, _ = sign_vote(s, KEY, CHAIN, v(PREVOTE, 2, 0))
    assert (s.locked_round, s.locked_block, len(s.votes)) == (-1, None, 1)


def test_signer_state_bytes_round_trip() -> None:
    b = block(1)
    s, _ = sign_vote(SignerState(), KEY, CHAIN, v(PREVOTE, 4, 2, b.hash))
    s, _ = sign_vote(s, KEY, CHAIN, v(PRECOMMIT, 4, 2, b.hash), b)
    assert SignerState.from_bytes(s.to_bytes()) == s
    p, _ = sign_proposal(SignerState(), KEY, CHAIN, Proposal(1, 0, -1, b.hash, KEY.public_key))
    assert SignerState.from_bytes(p.to_bytes()) == p
    assert SignerState.from_bytes(SignerState().to_bytes()) == SignerState()


def test_restarted_engine_refuses_to_double_sign() -> None:
    me = proposer_key(3)
    h = Harness(me)
    h.feed(Start(), proposal(0, block(1)))
    (pv,) = sent_votes(h.outbox)
    persisted = h.state.signer  # what the disk holds at the crash
    restarted = Harness(me, signer=persisted)  # memory lost
    out = restarted.feed(Start())
    assert sent_votes(out) == [pv]  # only the identical vote is sent again
    # the restarted engine times out in round 0: a nil prevote would conflict, so none leaves
    assert sent_votes(restarted.feed(TimeoutFired(1, 0, 0))) == []
    # and a later step of the same round is still allowed
    out = restarted.feed(*restarted.votes_from(PREVOTE, 0, NIL, 3))
    assert [(x.type, x.block_hash) for x in sent_votes(out)] == [(PRECOMMIT, NIL)]


def test_restarted_proposer_cannot_propose_a_different_block() -> None:
    me = proposer_key(0)
    h = Harness(me)
    h.feed(Start())
    first = [
        i for i in h.outbox if isinstance(i, Broadcast) and isinstance(i.message, ProposalMessage)
    ]
    assert len(first) == 1
    restarted = Harness(me, signer=h.state.signer)
    restarted.build = lambda height, r: block(999, height)  # a new clock: another block
    out = restarted.feed(Start())
    assert not [
        i for i in out if isinstance(i, Broadcast) and isinstance(i.message, ProposalMessage)
    ]


def test_restarted_engine_keeps_its_lock_and_reproposes_the_locked_block() -> None:
    me = proposer_key(3)
    h = Harness(me)
    x = block(1)
    h.feed(Start(), proposal(0, x), *h.votes_from(PREVOTE, 0, x.hash, 2))
    assert h.state.signer.locked_block == x and h.state.signer.step == STEP_PRECOMMIT
    r = Harness(me, signer=h.state.signer)
    r.feed(Start())
    assert (r.state.locked_round, r.state.locked_hash) == (0, x.hash)
    out = r.feed(*r.votes_from(PREVOTE, 1, NIL, 2), proposal(1, block(2)))
    prevotes = [(x_.round, x_.block_hash) for x_ in sent_votes(out) if x_.type == PREVOTE]
    assert prevotes == [(1, NIL)]  # still locked on x
    out = r.feed(*r.votes_from(PREVOTE, 3, NIL, 2))  # skip to round 3, which we propose
    (p,) = [
        i.message
        for i in out
        if isinstance(i, Broadcast) and isinstance(i.message, ProposalMessage)
    ]
    assert p.block == x and p.proposal.pol_round == 0 and p.proposal.round == 3


def test_file_store_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "node" / "signer.json"
    store = file_signer_store(path)
    assert store.load() == SignerState()
    b = block(1)
    s, _ = sign_vote(SignerState(), KEY, CHAIN, v(PREVOTE, 7, 1, b.hash))
    s, _ = sign_vote(s, KEY, CHAIN, v(PRECOMMIT, 7, 1, b.hash), b)
    store.save(s)
    assert file_signer_store(path).load() == s
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["signer.json"]  # no temp left


def test_file_store_keeps_the_old_state_if_a_write_dies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "signer.json"
    old, _ = sign_vote(SignerState(), KEY, CHAIN, v(PREVOTE, 1, 0))
    file_signer_store(path).save(old)
    new, _ = sign_vote(old, KEY, CHAIN, v(PRECOMMIT, 1, 0))

    def crash(*_: object) -> None:
        raise OSError("power loss")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        file_signer_store(path).save(new)
    monkeypatch.undo()
    assert file_signer_store(path).load() == old


def test_corrupt_file_is_an_error_not_a_fresh_start(tmp_path: Path) -> None:
    path = tmp_path / "signer.json"
    s, _ = sign_vote(SignerState(), KEY, CHAIN, v(PREVOTE, 1, 0))
    file_signer_store(path).save(s)
    text = path.read_text()
    path.write_text(
        text.replace('"round": 0', '"round": 0 ').replace(s.to_bytes().hex()[:8], "00" * 4)
    )
    with pytest.raises(StorageError, match="corrupt"):
        file_signer_store(path).load()
    path.write_text("{not json")
    with pytest.raises(StorageError):
        file_signer_store(path).load()


def test_step_constants_order() -> None:
    assert STEP_PROPOSE < PREVOTE < PRECOMMIT
    assert vote(KEY, PREVOTE, 0, NIL).vote.is_valid(CHAIN)
