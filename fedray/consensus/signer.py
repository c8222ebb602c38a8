"""Signer safety: what a validator may still sign, given what it signed last.

A validator's signing slots are ordered lexicographically by (height, round, step) with
PROPOSE < PREVOTE < PRECOMMIT. The signer refuses any slot below its last one, and at the last slot
it re-emits only the identical message (same sign bytes, hence the same deterministic Ed25519
signature). The shell persists a new `SignerState` durably *before* the signed message leaves the
node (the engine orders `PersistSignerState` before `Broadcast`), so after a crash and restart the
validator can never sign twice for a slot, even if its memory of the round is gone.

The state also keeps what a restarted validator needs of its current height, all of which changes
only when it signs (so persisting here keeps it exact, as CometBFT's WAL does):
- the lock (`locked_round`, `locked_block`): in Tendermint the lock changes only when the validator
  precommits a value. Forgetting it could help a conflicting block to a quorum in a later round
  (with f Byzantine peers, a fork). The block itself is kept so the validator can re-propose it:
  a locked proposer that proposes anything else votes against its own proposal, and liveness needs
  the locked value to come back (its valid value is restored as the lock);
- its own votes of the height (`votes`), to resend: a proof of lock may need a vote that was lost
  in flight while the validator was down, and no one else can produce it.

Deliberately ignored: remote signers and key rotation; the file format lives in
`fedray.storage.signer_state` (this module only encodes to bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedray.core.block import NIL, PRECOMMIT, PREVOTE, Block, Proposal, Vote
from fedray.core.crypto import PrivateKey
from fedray.core.encoding import decode, encode
from fedray.errors import EncodingError, FedrayError

STEP_PROPOSE = 0
STEP_PREVOTE = PREVOTE
STEP_PRECOMMIT = PRECOMMIT
STEP_NAMES = {STEP_PROPOSE: "propose", STEP_PREVOTE: "prevote", STEP_PRECOMMIT: "precommit"}

Slot = tuple[int, int, int]  # (height, round, step)


class SignerRefusedError(FedrayError):
    """The signer refuses a message for a slot below its last one, or a different message for its
    last slot (a double sign)."""

    code = "signer_refused"


@dataclass(frozen=True)
class SignerState:
    """The last signed slot and message; the lock and own votes at that height. Height 0: nothing
    signed yet."""

    height: int = 0
    round: int = -1
    step: int = STEP_PROPOSE
    last: Vote | Proposal | None = None
    locked_round: int = -1
    locked_block: Block | None = None
    votes: tuple[Vote, ...] = ()  # own votes at `height`, in signing order

    @property
    def locked_hash(self) -> bytes:
        return NIL if self.locked_block is None else self.locked_block.hash

    @property
    def slot(self) -> Slot:
        return (self.height, self.round, self.step)

    def to_bytes(self) -> bytes:
        last: list[Any] | None = None
        if isinstance(self.last, Vote):
            last = ["vote", self.last.to_canonical()]
        elif isinstance(self.last, Proposal):
            last = ["proposal", self.last.to_canonical()]
        block = None if self.locked_block is None else self.locked_block.raw
        return encode(
            [
                self.height,
                self.round,
                self.step,
                last,
                self.locked_round,
                block,
                [v.to_canonical() for v in self.votes],
            ]
        )

    @staticmethod
    def from_bytes(raw: bytes) -> SignerState:
        value = decode(raw)
        if not isinstance(value, list) or len(value) != 7:
            raise EncodingError("signer state is an array of 7 fields")
        height, round_, step, last_v, locked_round, block_raw, votes_v = value
        last: Vote | Proposal | None = None
        if last_v is not None:
            if not isinstance(last_v, list) or len(last_v) != 2:
                raise EncodingError("signer state message is [kind, message]")
            kind, body = last_v
            if kind == "vote":
                last = Vote.from_canonical(body)
            elif kind == "proposal":
                last = Proposal.from_canonical(body)
            else:
                raise EncodingError(f"unknown signed message kind {kind!r}")
        for v in (height, round_, step, locked_round):
            if not isinstance(v, int) or isinstance(v, bool):
                raise EncodingError("signer state slot fields are integers")
        if block_raw is not None and not isinstance(block_raw, bytes):
            raise EncodingError("signer state locked block is a byte string")
        if not isinstance(votes_v, list):
            raise EncodingError("signer state votes are an array")
        block = None if block_raw is None else Block.from_bytes(block_raw)
        votes = tuple(Vote.from_canonical(v) for v in votes_v)
        return SignerState(height, round_, step, last, locked_round, block, votes)

    def lock_at(self, height: int) -> tuple[int, Block | None]:
        """(locked_round, locked_block) for `height`: the persisted lock if it is for that height."""
        if self.height == height:
            return self.locked_round, self.locked_block
        return -1, None

    def votes_at(self, height: int) -> tuple[Vote, ...]:
        return self.votes if self.height == height else ()


def _check(signer: SignerState, slot: Slot, sign_bytes: bytes) -> bool:
    """True if the identical message was already signed for `slot` (re-emit it); False if `slot` is
    new; raise `SignerRefusedError` otherwise."""
    if slot < signer.slot:
        raise SignerRefusedError(f"slot {slot} is below the last signed slot {signer.slot}")
    if slot == signer.slot:
        if signer.last is not None and signer.last.sign_bytes() == sign_bytes:
            return True
        raise SignerRefusedError(f"a different message was already signed for slot {slot}")
    return False


def sign_vote(
    signer: SignerState, key: PrivateKey, chain_id: str, vote: Vote, block: Block | None = None
) -> tuple[SignerState, Vote]:
    """Sign `vote` if the signer allows it: (new signer state, signed vote). A precommit for a
    value must come with its `block`, which becomes the persisted lock."""
    slot = (vote.height, vote.round, vote.type)
    if _check(signer, slot, vote.sign_bytes()):
        assert isinstance(signer.last, Vote)
        return signer, signer.last
    locked_round, locked_block = signer.lock_at(vote.height)
    if vote.type == PRECOMMIT and vote.block_hash != NIL:  # precommitting a value locks on it
        if block is None or block.hash != vote.block_hash:
            raise SignerRefusedError("a precommit for a value needs that block (the new lock)")
        locked_round, locked_block = vote.round, block
    signed = vote.signed(key, chain_id)
    votes = (*signer.votes_at(vote.height), signed)
    new = SignerState(vote.height, vote.round, vote.type, signed, locked_round, locked_block, votes)
    return new, signed


def sign_proposal(
    signer: SignerState, key: PrivateKey, chain_id: str, proposal: Proposal
) -> tuple[SignerState, Proposal]:
    """Sign `proposal` if the signer allows it: (new signer state, signed proposal)."""
    slot = (proposal.height, proposal.round, STEP_PROPOSE)
    if _check(signer, slot, proposal.sign_bytes()):
        assert isinstance(signer.last, Proposal)
        return signer, signer.last
    signed = proposal.signed(key, chain_id)
    locked_round, locked_block = signer.lock_at(proposal.height)
    new = SignerState(
        proposal.height,
        proposal.round,
        STEP_PROPOSE,
        signed,
        locked_round,
        locked_block,
        signer.votes_at(proposal.height),
    )
    return new, signed
