"""Test helpers (imported by the consensus tests): a harness that drives one engine by hand: four equal validators, signed messages from the other
three, the application's answers given automatically (valid unless told otherwise)."""

from __future__ import annotations

from collections.abc import Callable

from fedray.consensus.engine import step
from fedray.consensus.messages import (
    Broadcast,
    BuildProposal,
    CheckProposal,
    Event,
    OutboxItem,
    ProposalBuilt,
    ProposalChecked,
    ProposalMessage,
    ScheduleTimeout,
    VoteMessage,
)
from fedray.consensus.proposer import ProposerSchedule
from fedray.consensus.signer import SignerState
from fedray.consensus.state import EngineConfig, EngineState, TimeoutConfig, initial_state
from fedray.core.block import Block, Proposal, Vote, make_block
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.encoding import digest
from fedray.core.state import ValidatorSet

CHAIN = "consensus-test"
KEYS = [key_from_seed(f"consensus-test/{i}".encode()) for i in range(4)]
KEY_OF = {k.public_key: k for k in KEYS}
VALIDATORS = ValidatorSet(tuple(sorted((k.public_key, 10) for k in KEYS)))
SCHEDULE = ProposerSchedule.genesis(VALIDATORS)
TIMEOUTS = TimeoutConfig(100, 10, 50, 20, 60, 30, commit_ms=40)


def proposer_key(round_: int, schedule: ProposerSchedule = SCHEDULE) -> PrivateKey:
    return KEY_OF[schedule.proposer(round_)]


def block(tag: int = 0, height: int = 1, proposer: bytes | None = None) -> Block:
    """A block whose content is told apart by `tag` (its time)."""
    return make_block(
        CHAIN,
        height,
        1_000 + tag,
        digest(b"prev"),
        digest(b"root"),
        proposer or KEYS[0].public_key,
        VALIDATORS,
        (),
        None,
    )


def proposal(
    round_: int, b: Block, pol_round: int = -1, key: PrivateKey | None = None, height: int = 1
) -> ProposalMessage:
    key = key or proposer_key(round_)
    p = Proposal(height, round_, pol_round, b.hash, key.public_key).signed(key, CHAIN)
    return ProposalMessage(p, b)


def vote(
    key: PrivateKey, type_: int, round_: int, block_hash: bytes, height: int = 1
) -> VoteMessage:
    return VoteMessage(Vote(type_, height, round_, block_hash, key.public_key).signed(key, CHAIN))


class Harness:
    """One engine; `feed` steps it and answers application requests like a shell would."""

    def __init__(
        self, me: PrivateKey | None, signer: SignerState | None = None, height: int = 1
    ) -> None:
        self.me = me
        config = EngineConfig(CHAIN, me, TIMEOUTS)
        self.state: EngineState = initial_state(config, height, VALIDATORS, SCHEDULE, signer)
        self.invalid: set[bytes] = set()
        self.build: Callable[[int, int], Block] = lambda h, r: block(100 + r, h)
        self.outbox: list[OutboxItem] = []

    @property
    def others(self) -> list[PrivateKey]:
        return [k for k in KEYS if k is not self.me]

    def feed(self, *events: Event) -> list[OutboxItem]:
        out: list[OutboxItem] = []
        queue = list(events)
        while queue:
            self.state, items = step(self.state, queue.pop(0))
            for item in items:
                out.append(item)
                if isinstance(item, CheckProposal):
                    b = item.block
                    queue.append(ProposalChecked(b.height, b.hash, b.hash not in self.invalid))
                elif isinstance(item, BuildProposal):
                    queue.append(
                        ProposalBuilt(item.height, item.round, self.build(item.height, item.round))
                    )
        self.outbox += out
        return out

    def votes_from(self, type_: int, round_: int, block_hash: bytes, n: int) -> list[VoteMessage]:
        """Votes of `n` validators other than us."""
        return [vote(k, type_, round_, block_hash, self.state.height) for k in self.others[:n]]


def sent_votes(out: list[OutboxItem]) -> list[Vote]:
    return [
        i.message.vote
        for i in out
        if isinstance(i, Broadcast) and isinstance(i.message, VoteMessage)
    ]


def timeouts(out: list[OutboxItem]) -> list[ScheduleTimeout]:
    return [i for i in out if isinstance(i, ScheduleTimeout)]


def non_proposer(round_: int = 0) -> PrivateKey:
    return next(k for k in KEYS if k.public_key != SCHEDULE.proposer(round_))
