"""The engine's vocabulary: network messages, input events, and outbox items.

`step(state, event) -> (state, outbox)` consumes one *event* and returns *outbox items* that the shell
must apply in order (see `fedray.consensus.driver` for the reference shell):

- `PersistSignerState` comes before the `Broadcast` of every newly signed message: the shell must make
  it durable before it sends anything that follows it.
- `BuildProposal` / `CheckProposal` are requests to the application; the shell answers them with the
  events `ProposalBuilt` / `ProposalChecked`. The engine never calls the application itself, so it
  stays pure, and a shell may answer asynchronously (e.g. after fetching payloads).
- `ScheduleTimeout` asks for a `TimeoutFired` event after `duration_ms`; timers are never cancelled,
  stale ones are ignored by the engine.
- `Decide` hands a committed block and its certificate to the shell, which finalizes and commits it
  in the application and answers with `NewHeight` (the validator set of the next height).
- `EvidenceFound` carries equivocation evidence for the application to put in a later block.
- `CommitExtended` carries the last decided block's certificate grown by late precommits, for the
  application to carry as the next proposal's `last_commit` (see `commits`).

Deliberately ignored: wire encoding (messages hold core types, which have canonical encodings) and
peer addressing (the engine only broadcasts; who gets what is the shell's business).
"""

from __future__ import annotations

from dataclasses import dataclass

from fedray.consensus.signer import SignerState
from fedray.core.block import Block, CommitCertificate, Proposal, Vote
from fedray.core.evidence import Evidence
from fedray.core.state import ValidatorSet


# --- network messages (also events when received) ---------------------------------------------
@dataclass(frozen=True)
class ProposalMessage:
    """A signed proposal and the block it names (`block.hash == proposal.block_hash`)."""

    proposal: Proposal
    block: Block

    @property
    def height(self) -> int:
        return self.proposal.height

    @property
    def round(self) -> int:
        return self.proposal.round


@dataclass(frozen=True)
class VoteMessage:
    """A signed prevote or precommit."""

    vote: Vote

    @property
    def height(self) -> int:
        return self.vote.height

    @property
    def round(self) -> int:
        return self.vote.round


Message = ProposalMessage | VoteMessage


# --- input events -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    """Begin (or, after a restart, resume) consensus at the engine's height."""


@dataclass(frozen=True)
class TimeoutFired:
    """A timer asked for by `ScheduleTimeout` expired."""

    height: int
    round: int
    step: int


@dataclass(frozen=True)
class ProposalBuilt:
    """The application's answer to `BuildProposal`."""

    height: int
    round: int
    block: Block


@dataclass(frozen=True)
class ProposalChecked:
    """The application's answer to `CheckProposal`: is the block valid (`process_proposal`)?"""

    height: int
    block_hash: bytes
    valid: bool


@dataclass(frozen=True)
class CertifiedBlock:
    """A committed block and its certificate from a peer (catch-up); verified by the engine."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True)
class NewHeight:
    """The application committed the decided block; `validators` sign `height` (the next one)."""

    height: int
    validators: ValidatorSet


Event = (
    Start
    | ProposalMessage
    | VoteMessage
    | TimeoutFired
    | ProposalBuilt
    | ProposalChecked
    | CertifiedBlock
    | NewHeight
)


# --- outbox items -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PersistSignerState:
    """Make `signer` durable before applying any later item."""

    signer: SignerState


@dataclass(frozen=True)
class Broadcast:
    """Send `message` to every peer (the engine has already counted it itself)."""

    message: Message


@dataclass(frozen=True)
class ScheduleTimeout:
    """Deliver `TimeoutFired(height, round, step)` after `duration_ms`."""

    height: int
    round: int
    step: int
    duration_ms: int


@dataclass(frozen=True)
class BuildProposal:
    """Ask the application for a block to propose (`prepare_proposal`); answer `ProposalBuilt`."""

    height: int
    round: int
    proposer: bytes


@dataclass(frozen=True)
class CheckProposal:
    """Ask the application whether `block` is valid (`process_proposal`); answer `ProposalChecked`."""

    block: Block


@dataclass(frozen=True)
class Decide:
    """`block` is committed at its height, certified by `certificate`; answer `NewHeight`."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True)
class EvidenceFound:
    """A validator signed two conflicting messages for one slot."""

    evidence: Evidence


@dataclass(frozen=True)
class CommitExtended:
    """The certificate of the last decided block with precommits that came after the decision;
    the application proposes with it (`Application.extend_commit`)."""

    certificate: CommitCertificate


OutboxItem = (
    PersistSignerState
    | Broadcast
    | ScheduleTimeout
    | BuildProposal
    | CheckProposal
    | Decide
    | EvidenceFound
    | CommitExtended
)
