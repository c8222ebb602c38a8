"""The engine's working copy of its state during one `step`, and the actions of Algorithm 1.

`Work` loads a frozen `EngineState` into mutable fields, collects the outbox, and freezes the result:
`engine.step` is the only user. Its methods are the paper's actions and the bookkeeping under them:
StartRound (L11) with the proposer's choice between re-proposing its valid value (L15) and asking the
application for a new one (L18), after the pause for late precommits in round 0 (`commits`), signing
through the signer (persist before sending), counting votes and proposals (with equivocation
evidence), locking (L38) and remembering the valid value (L42); and the two collections that outlive
a height's rules: the buffer of next-height messages and the previous height's growing certificate.

Each rule that a mutation test may break is a small named method (`lock`, `remember_valid`,
`value_to_repropose`, `is_round_proposer`), so that `fedray.consensus.mutants` can replace exactly one
of them.

Deliberately ignored: when rules fire (`rules`) and which events arrive (`engine`).
"""

from __future__ import annotations

from fedray.consensus import commits
from fedray.consensus.messages import (
    Broadcast,
    BuildProposal,
    CheckProposal,
    CommitExtended,
    Decide,
    EvidenceFound,
    Message,
    OutboxItem,
    PersistSignerState,
    ProposalMessage,
    ScheduleTimeout,
    VoteMessage,
)
from fedray.consensus.signer import (
    STEP_PRECOMMIT,
    STEP_PREVOTE,
    STEP_PROPOSE,
    SignerRefusedError,
    sign_proposal,
    sign_vote,
)
from fedray.consensus.state import STEP_COMMIT, EngineState
from fedray.consensus.votes import EMPTY_VOTE_SET
from fedray.core.block import NIL, PRECOMMIT, PREVOTE, Block, CommitCertificate, Proposal, Vote
from fedray.core.evidence import Evidence


class Work:
    """A mutable working copy of an `EngineState` for the duration of one `step`."""

    def __init__(self, s: EngineState) -> None:
        self.cfg = s.config
        self.out: list[OutboxItem] = []
        self.load(s)

    def load(self, s: EngineState) -> None:
        self.height, self.validators, self.schedule = s.height, s.validators, s.schedule
        self.powers, self.total = s.powers, s.total_power
        self.signer, self.round, self.step = s.signer, s.round, s.step
        self.locked_round, self.locked_hash = s.locked_round, s.locked_hash
        self.valid_round, self.valid_hash = s.valid_round, s.valid_hash
        self.proposals, self.blocks = dict(s.proposals), dict(s.blocks)
        self.validity, self.checking = dict(s.validity), set(s.checking)
        self.votes, self.fired = dict(s.votes), set(s.fired)
        self.requested_round, self.decision = s.requested_round, s.decision
        self.future = s.future  # shared with `s`: replaced, never changed in place
        self.evidence_slots = set(s.evidence_slots)
        self.proposer_cache = dict(s.proposer_cache)
        self.certificate, self.last_commit = s.certificate, s.last_commit
        self.last_powers, self.waiting_commit = s.last_powers, s.waiting_commit
        self.me = s.me

    def freeze(self) -> EngineState:
        return EngineState(
            self.cfg,
            self.height,
            self.validators,
            self.powers,
            self.total,
            self.schedule,
            self.signer,
            self.round,
            self.step,
            self.locked_round,
            self.locked_hash,
            self.valid_round,
            self.valid_hash,
            self.proposals,
            self.blocks,
            self.validity,
            frozenset(self.checking),
            self.votes,
            frozenset(self.fired),
            self.requested_round,
            self.decision,
            self.future,
            frozenset(self.evidence_slots),
            self.proposer_cache,
            self.certificate,
            self.last_commit,
            self.last_powers,
            self.waiting_commit,
        )

    # --- helpers ------------------------------------------------------------------------------
    def proposer(self, round_: int) -> bytes:
        p = self.proposer_cache.get(round_)
        if p is None:
            p = self.proposer_cache[round_] = self.schedule.proposer(round_)
        return p

    def is_round_proposer(self, proposal: Proposal) -> bool:
        """Rule: only the round's proposer proposes (`proposer(h, r)` in the paper)."""
        return proposal.proposer == self.proposer(proposal.round)

    def is_validator(self) -> bool:
        return self.me is not None and self.me in self.powers

    def timeout(self, step_: int) -> None:
        duration = self.cfg.timeouts.duration(step_, self.round)
        self.out.append(ScheduleTimeout(self.height, self.round, step_, duration))

    def sign(self, message: Vote | Proposal, block: Block | None = None) -> Vote | Proposal | None:
        """Sign through the signer; None if we are no validator or the signer refuses (after a
        restart: this slot was already signed, or a later one)."""
        key = self.cfg.key
        if key is None or not self.is_validator():
            return None
        signed: Vote | Proposal
        try:
            if isinstance(message, Vote):
                signer, signed = sign_vote(self.signer, key, self.cfg.chain_id, message, block)
            else:
                signer, signed = sign_proposal(self.signer, key, self.cfg.chain_id, message)
        except SignerRefusedError:
            return None
        if signer is not self.signer:  # rule: persist before the message leaves
            self.signer = signer
            self.out.append(PersistSignerState(signer))
        return signed

    def request_check(self, block: Block) -> None:
        h = block.hash
        if h not in self.validity and h not in self.checking:
            self.checking.add(h)
            self.out.append(CheckProposal(block))

    def accepted(self, block_hash: bytes) -> bool | None:
        """The application's verdict on a block, `valid(v)` in the paper (None: not answered)."""
        return self.validity.get(block_hash)

    def evidence(self, earlier: Vote | Proposal, later: Vote | Proposal) -> None:
        ev = Evidence.of(earlier, later)
        slot = (
            ev.kind,
            ev.offender,
            earlier.height,
            earlier.round,
            earlier.type if isinstance(earlier, Vote) else 0,
        )
        if slot not in self.evidence_slots:
            self.evidence_slots.add(slot)
            self.out.append(EvidenceFound(ev))

    def add_vote(self, vote: Vote) -> None:
        key = (vote.round, vote.type)
        vs = self.votes.get(key, EMPTY_VOTE_SET)
        # A conflicting vote counts only for a value that can matter here (bounds memory).
        matters = vote.block_hash == NIL or vote.block_hash in self.blocks
        new, earlier = vs.add(vote, self.powers[vote.validator], matters)
        if earlier is not None:
            self.evidence(earlier, vote)
        self.votes[key] = new

    def add_proposal(self, proposal: Proposal, block: Block) -> None:
        earlier = self.proposals.get(proposal.round, ())
        if any(p.block_hash == proposal.block_hash for p in earlier):
            return
        if earlier:
            self.evidence(earlier[0], proposal)
            if len(earlier) > 1:
                return  # keep two per round: enough to follow either side of an equivocation
        self.proposals[proposal.round] = (*earlier, proposal)
        self.blocks[block.hash] = block
        self.request_check(block)

    def buffer(self, sender: bytes, message: Message) -> None:
        """Keep `message` for the next height (checked by the caller); copies the buffer's top
        level only, so steps that buffer nothing copy nothing."""
        future = dict(self.future)
        future[sender] = (*future.get(sender, ()), message)
        self.future = future

    def add_late_precommit(self, vote: Vote) -> None:
        """A precommit for the previous height's decision that its certificate lacked (checked by
        the caller): the certificate grows, the application hears of it, and a proposer waiting
        for it stops waiting once every validator has signed."""
        assert self.last_commit is not None
        self.last_commit = commits.with_precommit(self.last_commit, vote)
        self.out.append(CommitExtended(self.last_commit))
        if self.waiting_commit and commits.complete(self.last_commit, self.last_powers):
            self.request_proposal()

    # --- actions ------------------------------------------------------------------------------
    def start_round(self, round_: int) -> None:  # StartRound (L11)
        self.round, self.step = round_, STEP_PROPOSE
        self.waiting_commit = False
        if self.is_validator() and self.proposer(round_) == self.me:
            again = self.value_to_repropose()
            if again is not None:  # L15: re-propose the valid value with its POL round
                self.propose(again, self.valid_round)
            elif round_ == 0 and self.late_precommits_expected():
                self.waiting_commit = True  # getValue() once the pause ends (`commits`)
                self.timeout(STEP_COMMIT)
            else:  # getValue() (L18)
                self.request_proposal()
        # Also for the proposer, as in CometBFT: a proposal the signer refuses cannot stall it.
        self.timeout(STEP_PROPOSE)

    def late_precommits_expected(self) -> bool:
        """Whether round 0's proposer pauses for the previous height's late precommits."""
        c = self.last_commit
        return (
            c is not None
            and self.cfg.timeouts.commit_ms > 0
            and not commits.complete(c, self.last_powers)
        )

    def request_proposal(self) -> None:  # getValue() (L18)
        assert self.me is not None
        self.waiting_commit = False
        self.requested_round = self.round
        self.out.append(BuildProposal(self.height, self.round, self.me))

    def value_to_repropose(self) -> Block | None:
        """L14: `validValue` if there is one (and we hold its block)."""
        if self.valid_round >= 0:
            return self.blocks.get(self.valid_hash)
        return None

    def propose(self, block: Block, pol_round: int) -> None:
        assert self.me is not None
        signed = self.sign(Proposal(self.height, self.round, pol_round, block.hash, self.me))
        self.validity.setdefault(block.hash, True)  # our own block (or a polka's) is valid
        if isinstance(signed, Proposal):
            self.broadcast(ProposalMessage(signed, block))
            self.add_proposal(signed, block)

    def vote(self, type_: int, block_hash: bytes) -> None:
        assert type_ in (PREVOTE, PRECOMMIT)
        self.step = STEP_PREVOTE if type_ == PREVOTE else STEP_PRECOMMIT
        if self.me is None:
            return
        vote = Vote(type_, self.height, self.round, block_hash, self.me)
        signed = self.sign(vote, self.blocks.get(block_hash))
        if isinstance(signed, Vote):
            self.broadcast(VoteMessage(signed))
            self.add_vote(signed)

    def broadcast(self, message: Message) -> None:
        self.out.append(Broadcast(message))

    def lock(self, round_: int, block_hash: bytes) -> None:
        """L38: lock on the value we are about to precommit."""
        self.locked_round, self.locked_hash = round_, block_hash

    def remember_valid(self, round_: int, block_hash: bytes) -> None:
        """L42: the latest polka for a proposal is the value to re-propose."""
        self.valid_round, self.valid_hash = round_, block_hash

    def decide(self, block: Block, certificate: CommitCertificate) -> None:
        self.decision, self.certificate = block, certificate
        self.out.append(Decide(block, certificate))
