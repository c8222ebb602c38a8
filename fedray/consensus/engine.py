"""The Tendermint consensus engine as a pure function: `step(state, event) -> (state, outbox)`.

This is Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus"
(arXiv:1807.04938); comments name its lines (L22, L28, ...). Per height: rounds of propose, prevote,
precommit; a value is decided on precommits of more than 2/3 of the voting power; a validator locks on
the value it precommits (`locked_*`) and prevotes for another value only with a proof of lock change,
i.e. a re-proposal whose polka (2/3 prevotes) is from a round at or after its lock (L28). The latest
polka it saw is `valid_*`, which it re-proposes. f+1 messages from a higher round make it skip there
(L55). Timeouts grow linearly with the round and are events the shell delivers.

Layout: this module turns events into calls (receiving, timeouts, the application's answers, catch-up,
the next height); `rules` holds the upon-rules, `work` the mutable working copy and the actions.

Purity: no clock, no I/O, no randomness, no Ray. The application is reached by outbox requests
(`BuildProposal`, `CheckProposal`, `Decide`) answered by events, see `messages`. Messages are
signature-checked here (cached, since every peer relays the same votes), own messages are counted
directly. State is a frozen `EngineState`; `step` copies what it changes and never mutates its input.

Messages of other heights: one for the next height is buffered, replayed at `NewHeight`, if it could
count there: signed by a validator of this height (the next height's set is not known before this
one is decided, and rarely differs: a validator joining at h+1 is heard once peers resend), well
formed and correctly signed, at most `max_future_per_sender` per validator. Junk never enters the
buffer, and a Byzantine validator fills only its own share. A precommit of the previous height for
its decided block, in the decided round, grows that height's certificate (`commits`: late
precommits, so that a slow validator is not judged offline).

Deliberately ignored: block parts and partial gossip (a proposal carries its whole block), vote
extensions, and the choice of which peers to send to (`gossip()` lists what to resend).
"""

from __future__ import annotations

from fedray.consensus import rules
from fedray.consensus.commits import matches, signed_by, with_precommit
from fedray.consensus.messages import (
    CertifiedBlock,
    CommitExtended,
    Event,
    Message,
    NewHeight,
    OutboxItem,
    ProposalBuilt,
    ProposalChecked,
    ProposalMessage,
    Start,
    TimeoutFired,
    VoteMessage,
)
from fedray.consensus.signer import STEP_PRECOMMIT, STEP_PREVOTE, STEP_PROPOSE
from fedray.consensus.state import (
    STEP_COMMIT,
    EngineConfig,
    EngineState,
    TimeoutConfig,
    gossip,
    initial_state,
    verified,
)
from fedray.consensus.sync import verify_certified
from fedray.consensus.votes import EMPTY_VOTE_SET
from fedray.consensus.work import Work
from fedray.core.block import NIL, PRECOMMIT, PREVOTE, CommitCertificate, Vote
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
    if isinstance(event, VoteMessage) and nothing_to_do(state, event):
        return state, ()  # fast path: relayed duplicates are the common case
    w = Work(state)
    if isinstance(event, Start):
        start(w)
    elif isinstance(event, ProposalMessage | VoteMessage):
        receive(w, event)
    elif isinstance(event, TimeoutFired):
        on_timeout(w, event)
    elif isinstance(event, ProposalBuilt):
        on_built(w, event)
    elif isinstance(event, ProposalChecked):
        if event.height == w.height and event.block_hash in w.checking:
            w.validity[event.block_hash] = event.valid
            w.checking.discard(event.block_hash)
    elif isinstance(event, CertifiedBlock):
        on_certified(w, event)
    elif isinstance(event, NewHeight):
        on_new_height(w, event)
    rules.run_rules(w)
    return w.freeze(), tuple(w.out)


def nothing_to_do(state: EngineState, msg: VoteMessage) -> bool:
    """A vote that `state` already holds, or that no height it keeps could use."""
    v = msg.vote
    if v.height == state.height:
        return state.votes.get((v.round, v.type), EMPTY_VOTE_SET).has(v)
    if v.height == state.height + 1:
        return msg in state.future.get(v.validator, ())
    if v.height == state.height - 1:
        c = state.last_commit
        return c is None or not matches(c, v) or signed_by(c, v.validator)
    return True


def start(w: Work) -> None:
    if w.round >= 0:
        return
    s = w.signer
    resume = s.round if s.height == w.height and s.round > 0 else 0
    w.start_round(resume)
    for vote in s.votes_at(w.height):  # resend our votes: a lost one may be needed
        if vote.validator in w.powers:
            w.broadcast(VoteMessage(vote))
            w.add_vote(vote)


def receive(w: Work, msg: Message) -> None:
    if msg.height == w.height + 1:
        buffer_next_height(w, msg)
        return
    if msg.height == w.height - 1 and isinstance(msg, VoteMessage):
        receive_late_precommit(w, msg.vote)
        return
    if msg.height != w.height or w.decision is not None:
        return
    if not 0 <= msg.round <= max(w.round, 0) + w.cfg.max_round_ahead:
        return
    chain_id = w.cfg.chain_id
    if isinstance(msg, VoteMessage):
        v = msg.vote
        if v.type in (PREVOTE, PRECOMMIT) and v.validator in w.powers and verified(v, chain_id):
            w.add_vote(v)
        return
    p, block = msg.proposal, msg.block
    if (
        -1 <= p.pol_round < p.round  # rule: a POL round precedes the proposal's round
        and w.is_round_proposer(p)
        and block.hash == p.block_hash
        and block.height == w.height
        and verified(p, chain_id)
    ):
        w.add_proposal(p, block)


def buffer_next_height(w: Work, msg: Message) -> None:
    """Keep a message for the next height if it could count there (see the module docstring).
    The cheap checks come first; the signature, the costly one, last."""
    sender = msg.vote.validator if isinstance(msg, VoteMessage) else msg.proposal.proposer
    held = w.future.get(sender, ())
    if (
        sender not in w.powers
        or len(held) >= w.cfg.max_future_per_sender
        or msg in held
        or not 0 <= msg.round <= w.cfg.max_round_ahead
    ):
        return
    chain_id = w.cfg.chain_id
    if isinstance(msg, VoteMessage):
        ok = msg.vote.type in (PREVOTE, PRECOMMIT) and verified(msg.vote, chain_id)
    else:
        p, block = msg.proposal, msg.block
        ok = (
            -1 <= p.pol_round < p.round
            and block.height == msg.height
            and block.hash == p.block_hash
            and verified(p, chain_id)
        )
    if ok:
        w.buffer(sender, msg)


def receive_late_precommit(w: Work, vote: Vote) -> None:
    """A precommit of the previous height: kept if its certificate could hold it (`commits`)."""
    c = w.last_commit
    if (
        c is not None
        and matches(c, vote)
        and vote.validator in w.last_powers
        and not signed_by(c, vote.validator)
        and verified(vote, w.cfg.chain_id)
    ):
        w.add_late_precommit(vote)


def on_timeout(w: Work, ev: TimeoutFired) -> None:
    if ev.height != w.height or ev.round != w.round or w.decision is not None:
        return
    if ev.step == STEP_COMMIT:
        if w.waiting_commit:  # the pause for late precommits is over: build the proposal
            w.request_proposal()
    elif ev.step == STEP_PROPOSE and w.step == STEP_PROPOSE:
        on_timeout_propose(w)
    elif ev.step == STEP_PREVOTE and w.step == STEP_PREVOTE:
        on_timeout_prevote(w)
    elif ev.step == STEP_PRECOMMIT:
        on_timeout_precommit(w)


def on_timeout_propose(w: Work) -> None:  # L57: no acceptable proposal in time: prevote nil
    w.vote(PREVOTE, NIL)


def on_timeout_prevote(w: Work) -> None:  # L61: no polka in time: precommit nil
    w.vote(PRECOMMIT, NIL)


def on_timeout_precommit(w: Work) -> None:  # L65: no decision in this round: the next one
    w.start_round(w.round + 1)


def on_built(w: Work, ev: ProposalBuilt) -> None:
    if (
        (ev.height, ev.round) == (w.height, w.round)
        and w.requested_round == w.round
        and w.step == STEP_PROPOSE
        and ev.block.height == w.height
        and w.round not in w.proposals
    ):
        w.requested_round = -1
        w.propose(ev.block, -1)


def on_certified(w: Work, ev: CertifiedBlock) -> None:
    if w.decision is not None or ev.block.height != w.height:
        return
    try:
        verify_certified(w.cfg.chain_id, w.validators, ev.block, ev.certificate)
    except FedrayError:
        return
    w.blocks[ev.block.hash] = ev.block
    w.decide(ev.block, ev.certificate)


def with_known_precommits(w: Work) -> CommitCertificate | None:
    """Our decision's certificate plus the precommits we hold for its block in its round that it
    lacks (a certificate from catch-up may lack ours)."""
    c = w.certificate
    if c is None:
        return None
    for v in w.votes.get((c.round, PRECOMMIT), EMPTY_VOTE_SET).votes_for(c.block_hash):
        if not signed_by(c, v.validator):
            c = with_precommit(c, v)
    return c


def on_new_height(w: Work, ev: NewHeight) -> None:
    if w.decision is None or ev.height != w.height + 1:
        return
    nxt = initial_state(
        w.cfg, ev.height, ev.validators, w.schedule.next_height(ev.validators), w.signer
    )
    future, powers, decided = w.future, w.powers, w.certificate
    certificate = with_known_precommits(w)
    w.load(nxt)  # resets every per-height field
    w.last_commit, w.last_powers = certificate, powers
    if certificate is not decided:
        assert certificate is not None
        w.out.append(CommitExtended(certificate))
    w.start_round(0)
    for held in future.values():
        for msg in held:
            receive(w, msg)
