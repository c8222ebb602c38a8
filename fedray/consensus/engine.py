"""The Tendermint consensus engine as a pure function: `step(state, event) -> (state, outbox)`.

This is Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus"
(arXiv:1807.04938); comments name its lines (L22, L28, ...). Per height: rounds of propose, prevote,
precommit; a value is decided on precommits of more than 2/3 of the voting power; a validator locks on
the value it precommits (`locked_*`) and prevotes for another value only with a proof of lock change,
i.e. a re-proposal whose polka (2/3 prevotes) is from a round at or after its lock (L28). The latest
polka it saw is `valid_*`, which it re-proposes. f+1 messages from a higher round make it skip there
(L55). Timeouts grow linearly with the round and are events the shell delivers.

Purity: no clock, no I/O, no randomness, no Ray. The application is reached by outbox requests
(`BuildProposal`, `CheckProposal`, `Decide`) answered by events, see `messages`. Messages are
signature-checked here (cached, since every peer relays the same votes), own messages are counted
directly. State is a frozen `EngineState`; `step` copies what it changes and never mutates its input.

Deliberately ignored: block parts and partial gossip (a proposal carries its whole block), vote
extensions, and the choice of which peers to send to (`gossip()` lists what to resend).
"""

from __future__ import annotations

from fedray.consensus.messages import (
    Broadcast,
    BuildProposal,
    CertifiedBlock,
    CheckProposal,
    Decide,
    Event,
    EvidenceFound,
    Message,
    NewHeight,
    OutboxItem,
    PersistSignerState,
    ProposalBuilt,
    ProposalChecked,
    ProposalMessage,
    ScheduleTimeout,
    Start,
    TimeoutFired,
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
from fedray.consensus.state import (
    EngineConfig,
    EngineState,
    TimeoutConfig,
    gossip,
    initial_state,
    verified,
)
from fedray.consensus.sync import verify_certified
from fedray.consensus.votes import EMPTY_VOTE_SET, is_one_third
from fedray.core.block import NIL, PRECOMMIT, PREVOTE, Block, CommitCertificate, Proposal, Vote
from fedray.core.evidence import Evidence
from fedray.errors import FedrayError

# The engine's public face; the state module holds the value types.
__all__ = [
    "EngineConfig",
    "EngineState",
    "TimeoutConfig",
    "gossip",
    "initial_state",
    "step",
]


def step(state: EngineState, event: Event) -> tuple[EngineState, tuple[OutboxItem, ...]]:
    """Apply one event; returns the new state and the outbox to apply in order."""
    if isinstance(event, VoteMessage):  # fast path: relayed duplicates are the common case
        v = event.vote
        if v.height == state.height and state.votes.get((v.round, v.type), EMPTY_VOTE_SET).has(v):
            return state, ()
    w = _Work(state)
    if isinstance(event, Start):
        w.start()
    elif isinstance(event, ProposalMessage | VoteMessage):
        w.receive(event)
    elif isinstance(event, TimeoutFired):
        w.on_timeout(event)
    elif isinstance(event, ProposalBuilt):
        w.on_built(event)
    elif isinstance(event, ProposalChecked):
        if event.height == w.height and event.block_hash in w.checking:
            w.validity[event.block_hash] = event.valid
            w.checking.discard(event.block_hash)
    elif isinstance(event, CertifiedBlock):
        w.on_certified(event)
    elif isinstance(event, NewHeight):
        w.on_new_height(event)
    w.run_rules()
    return w.freeze(), tuple(w.out)


class _Work:
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
        self.future, self.evidence_slots = list(s.future), set(s.evidence_slots)
        self.proposer_cache = dict(s.proposer_cache)
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
            tuple(self.future),
            frozenset(self.evidence_slots),
            self.proposer_cache,
        )

    # --- helpers ------------------------------------------------------------------------------
    def proposer(self, round_: int) -> bytes:
        p = self.proposer_cache.get(round_)
        if p is None:
            p = self.proposer_cache[round_] = self.schedule.proposer(round_)
        return p

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

    # --- actions ------------------------------------------------------------------------------
    def start_round(self, round_: int) -> None:  # StartRound (L11)
        self.round, self.step = round_, STEP_PROPOSE
        if self.is_validator() and self.proposer(round_) == self.me:
            if self.valid_round >= 0 and self.valid_hash in self.blocks:  # re-propose (L15)
                self.propose(self.blocks[self.valid_hash], self.valid_round)
            else:  # getValue() (L18)
                self.requested_round = round_
                assert self.me is not None
                self.out.append(BuildProposal(self.height, round_, self.me))
        # Also for the proposer, as in CometBFT: a proposal the signer refuses cannot stall it.
        self.timeout(STEP_PROPOSE)

    def propose(self, block: Block, pol_round: int) -> None:
        assert self.me is not None
        signed = self.sign(Proposal(self.height, self.round, pol_round, block.hash, self.me))
        self.validity.setdefault(block.hash, True)  # our own block (or a polka's) is valid
        if isinstance(signed, Proposal):
            self.out.append(Broadcast(ProposalMessage(signed, block)))
            self.add_proposal(signed, block)

    def vote(self, type_: int, block_hash: bytes) -> None:
        assert type_ in (PREVOTE, PRECOMMIT)
        self.step = STEP_PREVOTE if type_ == PREVOTE else STEP_PRECOMMIT
        if self.me is None:
            return
        vote = Vote(type_, self.height, self.round, block_hash, self.me)
        signed = self.sign(vote, self.blocks.get(block_hash))
        if isinstance(signed, Vote):
            self.out.append(Broadcast(VoteMessage(signed)))
            self.add_vote(signed)

    def decide(self, block: Block, certificate: CommitCertificate) -> None:
        self.decision = block
        self.out.append(Decide(block, certificate))

    # --- event handlers -----------------------------------------------------------------------
    def start(self) -> None:
        if self.round >= 0:
            return
        s = self.signer
        resume = s.round if s.height == self.height and s.round > 0 else 0
        self.start_round(resume)
        for vote in s.votes_at(self.height):  # resend our votes: a lost one may be needed
            if vote.validator in self.powers:
                self.out.append(Broadcast(VoteMessage(vote)))
                self.add_vote(vote)

    def receive(self, msg: Message) -> None:
        if msg.height != self.height or self.decision is not None:
            if (
                msg.height == self.height + 1
                and len(self.future) < self.cfg.max_future_messages
                and msg not in self.future
            ):
                self.future.append(msg)
            return
        if not 0 <= msg.round <= max(self.round, 0) + self.cfg.max_round_ahead:
            return
        chain_id = self.cfg.chain_id
        if isinstance(msg, VoteMessage):
            v = msg.vote
            if (
                v.type in (PREVOTE, PRECOMMIT)
                and v.validator in self.powers
                and verified(v, chain_id)
            ):
                self.add_vote(v)
            return
        p, block = msg.proposal, msg.block
        if (
            -1 <= p.pol_round < p.round  # rule: a POL round precedes the proposal's round
            and p.proposer == self.proposer(p.round)  # rule: only the round's proposer
            and block.hash == p.block_hash
            and block.height == self.height
            and verified(p, chain_id)
        ):
            self.add_proposal(p, block)

    def on_timeout(self, ev: TimeoutFired) -> None:
        if ev.height != self.height or ev.round != self.round or self.decision is not None:
            return
        if ev.step == STEP_PROPOSE and self.step == STEP_PROPOSE:  # OnTimeoutPropose (L57)
            self.vote(PREVOTE, NIL)
        elif ev.step == STEP_PREVOTE and self.step == STEP_PREVOTE:  # OnTimeoutPrevote (L61)
            self.vote(PRECOMMIT, NIL)
        elif ev.step == STEP_PRECOMMIT:  # OnTimeoutPrecommit (L65)
            self.start_round(self.round + 1)

    def on_built(self, ev: ProposalBuilt) -> None:
        current = (ev.height, ev.round) == (self.height, self.round)
        if (
            current
            and self.requested_round == self.round
            and self.step == STEP_PROPOSE
            and ev.block.height == self.height
            and self.round not in self.proposals
        ):
            self.requested_round = -1
            self.propose(ev.block, -1)

    def on_certified(self, ev: CertifiedBlock) -> None:
        if self.decision is not None or ev.block.height != self.height:
            return
        try:
            verify_certified(self.cfg.chain_id, self.validators, ev.block, ev.certificate)
        except FedrayError:
            return
        self.blocks[ev.block.hash] = ev.block
        self.decide(ev.block, ev.certificate)

    def on_new_height(self, ev: NewHeight) -> None:
        if self.decision is None or ev.height != self.height + 1:
            return
        nxt = initial_state(
            self.cfg,
            ev.height,
            ev.validators,
            self.schedule.next_height(ev.validators),
            self.signer,
        )
        future = self.future
        self.load(nxt)  # resets every per-height field
        self.start_round(0)
        for msg in future:
            self.receive(msg)

    # --- upon rules ---------------------------------------------------------------------------
    def run_rules(self) -> None:
        if self.round < 0:
            return
        while self.decision is None:
            if self.rule_decide() or self.rule_skip_round() or self.rule_prevote():
                continue
            if not self.rules_after_prevote():
                return

    def rule_decide(self) -> bool:  # L49: a proposal and 2/3 precommits for it, in any round
        for (_, type_), vs in self.votes.items():
            if type_ != PRECOMMIT:
                continue
            value = vs.quorum_value(self.total)
            if value is None or value not in self.blocks:
                continue
            if self.validity.get(value) is True:
                cert = CommitCertificate.from_votes(vs.votes_for(value))
                self.decide(self.blocks[value], cert)
                return True
            self.request_check(self.blocks[value])
        return False

    def rule_skip_round(self) -> bool:  # L55: f+1 of the power is already in a later round
        rounds = {r for r, _ in self.votes} | set(self.proposals)
        for r in sorted((r for r in rounds if r > self.round), reverse=True):
            senders = set(self.votes.get((r, PREVOTE), EMPTY_VOTE_SET).voters())
            senders |= set(self.votes.get((r, PRECOMMIT), EMPTY_VOTE_SET).voters())
            if r in self.proposals:
                senders.add(self.proposals[r][0].proposer)
            if is_one_third(sum(self.powers[k] for k in senders), self.total):
                self.start_round(r)
                return True
        return False

    def rule_prevote(self) -> bool:  # L22 and L28, in the propose step
        if self.step != STEP_PROPOSE or self.round not in self.proposals:
            return False
        p = self.proposals[self.round][0]  # the first one we got is the one we answer
        v, vr, valid = p.block_hash, p.pol_round, self.validity.get(p.block_hash)
        if valid is None:
            return False  # wait for CheckProposal's answer (or the propose timeout)
        if vr == -1:  # L22: a fresh proposal; accept unless locked on something else
            ok = self.locked_round == -1 or self.locked_hash == v
        elif self.votes.get((vr, PREVOTE), EMPTY_VOTE_SET).quorum_for(v, self.total):
            ok = self.locked_round <= vr or self.locked_hash == v  # L28: proof of lock change
        else:
            return False
        self.vote(PREVOTE, v if valid and ok else NIL)
        return True

    def rules_after_prevote(self) -> bool:
        changed = False
        r, total = self.round, self.total
        prevotes = self.votes.get((r, PREVOTE), EMPTY_VOTE_SET)
        if self.step == STEP_PREVOTE and (34, r) not in self.fired and prevotes.quorum_any(total):
            self.fired.add((34, r))  # L34: 2/3 prevotes for anything: start the prevote timer
            self.timeout(STEP_PREVOTE)
            changed = True
        polka = None
        if self.step >= STEP_PREVOTE and (36, r) not in self.fired:
            for p in self.proposals.get(r, ()):
                if self.validity.get(p.block_hash) is True and prevotes.quorum_for(
                    p.block_hash, total
                ):
                    polka = p.block_hash
        if polka is not None:  # L36: a polka for a proposal: lock, precommit, remember as valid
            self.fired.add((36, r))
            if self.step == STEP_PREVOTE:
                self.locked_round, self.locked_hash = r, polka
                self.vote(PRECOMMIT, polka)
            self.valid_round, self.valid_hash = r, polka
            changed = True
        if self.step == STEP_PREVOTE and prevotes.quorum_for(NIL, total):
            self.vote(PRECOMMIT, NIL)  # L44: a polka for nil
            changed = True
        if (47, r) not in self.fired and self.votes.get((r, PRECOMMIT), EMPTY_VOTE_SET).quorum_any(
            total
        ):  # L47: 2/3 precommits for anything: start the precommit timer
            self.fired.add((47, r))
            self.timeout(STEP_PRECOMMIT)
            changed = True
        return changed
