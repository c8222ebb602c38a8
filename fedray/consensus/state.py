"""The engine's state at one height, its configuration, and what it gossips.

`EngineState` is a frozen value: everything the Tendermint engine (`engine.step`) knows at one height:
round and step, lock and valid value, proposals and blocks, the application's validity answers, the
vote sets, which once-per-round rules fired, the signer state it last persisted, the messages for the
next height it buffered (per sender), and the previous height's certificate as late precommits grow
it (`commits`). `initial_state` builds one for a height, restoring the lock and own votes from a
persisted `SignerState` after a restart. `gossip` lists what to resend while a height makes no
progress.

Its mappings are shared between successive states and never changed in place: a step that changes
one copies it (the buffer is copied only when a message is added to it, not on every step).

Deliberately ignored: persistence of anything but the signer state (a restarted engine rebuilds the
rest from peers) and wire formats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from fedray.consensus.messages import Message, ProposalMessage, VoteMessage
from fedray.consensus.proposer import ProposerSchedule
from fedray.consensus.signer import STEP_PREVOTE, STEP_PROPOSE, SignerState
from fedray.consensus.votes import EMPTY_VOTE_SET, VoteSet
from fedray.core.block import NIL, PRECOMMIT, PREVOTE, Block, CommitCertificate, Proposal, Vote
from fedray.core.crypto import PrivateKey
from fedray.core.state import ValidatorSet

STEP_COMMIT = 3  # not a signing step: the timer of the pause after a decision (`commit_ms`)


@dataclass(frozen=True)
class TimeoutConfig:
    """Timeouts in milliseconds; round r waits `base + r * delta` (grows so that after GST some
    round is long enough for every honest message to arrive). `commit_ms` is the longest the
    proposer of round 0 waits after the previous decision for late precommits (CometBFT's
    `timeout_commit`; 0: none); it must stay well below `propose_ms`, which peers wait for its
    proposal."""

    propose_ms: int = 3000
    propose_delta_ms: int = 500
    prevote_ms: int = 1000
    prevote_delta_ms: int = 500
    precommit_ms: int = 1000
    precommit_delta_ms: int = 500
    commit_ms: int = 1000

    def duration(self, step: int, round_: int) -> int:
        if step == STEP_COMMIT:
            return self.commit_ms
        if step == STEP_PROPOSE:
            return self.propose_ms + round_ * self.propose_delta_ms
        if step == STEP_PREVOTE:
            return self.prevote_ms + round_ * self.prevote_delta_ms
        return self.precommit_ms + round_ * self.precommit_delta_ms


@dataclass(frozen=True)
class EngineConfig:
    chain_id: str
    key: PrivateKey | None = None  # None: an observer that never signs
    timeouts: TimeoutConfig = TimeoutConfig()
    max_round_ahead: int = 1000  # messages for rounds further ahead are dropped (bounds memory)
    max_future_per_sender: int = 8  # buffered messages for the next height, per validator


@dataclass(frozen=True)
class EngineState:
    """Everything the engine knows at one height. Treat as immutable; only `step` makes new ones."""

    config: EngineConfig
    height: int
    validators: ValidatorSet
    powers: Mapping[bytes, int]
    total_power: int
    schedule: ProposerSchedule  # at this height; the shell persists it with each commit
    signer: SignerState
    round: int = -1  # -1: not started
    step: int = STEP_PROPOSE
    locked_round: int = -1
    locked_hash: bytes = NIL
    valid_round: int = -1
    valid_hash: bytes = NIL
    # round -> the round proposer's proposals: the first, and at most one conflicting one
    proposals: Mapping[int, tuple[Proposal, ...]] = field(default_factory=dict)
    blocks: Mapping[bytes, Block] = field(default_factory=dict)
    validity: Mapping[bytes, bool] = field(default_factory=dict)  # answers to CheckProposal
    checking: frozenset[bytes] = frozenset()  # CheckProposal sent, no answer yet
    votes: Mapping[tuple[int, int], VoteSet] = field(default_factory=dict)  # (round, type)
    fired: frozenset[tuple[int, int]] = frozenset()  # (rule line, round) of once-per-round rules
    requested_round: int = -1  # round of the pending BuildProposal
    decision: Block | None = None  # decided here, waiting for NewHeight
    # messages for height + 1, by sender: signed by a validator of this height (see `engine`)
    future: Mapping[bytes, tuple[Message, ...]] = field(default_factory=dict)
    evidence_slots: frozenset[tuple[object, ...]] = frozenset()  # one evidence per offending slot
    proposer_cache: Mapping[int, bytes] = field(default_factory=dict)
    certificate: CommitCertificate | None = None  # of our decision at this height
    # the previous height's certificate, grown by late precommits, and the powers that signed it
    last_commit: CommitCertificate | None = None
    last_powers: Mapping[bytes, int] = field(default_factory=dict)
    waiting_commit: bool = False  # round 0's proposer waits for late precommits (`commit_ms`)

    @property
    def me(self) -> bytes | None:
        key = self.config.key
        return None if key is None else key.public_key


def initial_state(
    config: EngineConfig,
    height: int,
    validators: ValidatorSet,
    schedule: ProposerSchedule,
    signer: SignerState | None = None,
) -> EngineState:
    """An engine about to start `height` (send it `Start()`). After a restart pass the persisted
    signer state: the lock and the last signed slot are taken from it."""
    signer = signer or SignerState()
    locked_round, locked = signer.lock_at(height)
    if locked is None:
        return EngineState(
            config,
            height,
            validators,
            dict(validators.members),
            validators.total_power,
            schedule,
            signer,
        )
    # Restart while locked: the lock, and the valid value as the lock (validRound >= lockedRound
    # holds in the algorithm; a later valid value is lost, which costs liveness, never safety).
    h = locked.hash
    return EngineState(
        config,
        height,
        validators,
        dict(validators.members),
        validators.total_power,
        schedule,
        signer,
        locked_round=locked_round,
        locked_hash=h,
        valid_round=locked_round,
        valid_hash=h,
        blocks={h: locked},
        validity={h: True},
    )


@lru_cache(maxsize=1 << 16)
def verified(message: Vote | Proposal, chain_id: str) -> bool:
    """Signature check, memoized: a pure function of its (hashable, frozen) arguments."""
    return message.is_valid(chain_id)


def gossip(state: EngineState) -> tuple[Message, ...]:
    """What to resend while the height makes no progress, so that lost messages reach every honest
    node eventually (the paper assumes correct processes relay what they receive; CometBFT's gossip
    routines send each peer the votes its round needs): the current round's proposal and votes, the
    prevotes of every proof-of-lock round we know of (our lock, our valid value, the current
    proposal's POL), and the precommits of every round up to ours and of any decided round."""
    r = state.round
    out: list[Message] = []
    p = state.proposals.get(r, (None,))[0]
    if p is not None:
        out.append(ProposalMessage(p, state.blocks[p.block_hash]))
    rounds = {r, state.locked_round, state.valid_round, -1 if p is None else p.pol_round}
    for rnd in sorted(x for x in rounds if x >= 0):
        out.extend(
            VoteMessage(v) for v in state.votes.get((rnd, PREVOTE), EMPTY_VOTE_SET).all_votes()
        )
    for (rnd, type_), vs in sorted(state.votes.items()):
        if type_ == PRECOMMIT and resends_precommits(state, rnd, vs):
            out.extend(VoteMessage(v) for v in vs.all_votes())
    return tuple(out)


def resends_precommits(state: EngineState, round_: int, precommits: VoteSet) -> bool:
    """Whether `gossip` resends the precommits of `round_`: those of every round up to ours (a peer
    still in an earlier round needs them to time out of it (L47) or to decide (L49), and once we
    moved on no one else may resend ours), and those of a decided round."""
    return round_ <= state.round or precommits.quorum_value(state.total_power) is not None
