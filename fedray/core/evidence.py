"""Equivocation evidence: two conflicting signed consensus messages from one validator.

The consensus engine produces evidence when it sees a validator sign two different votes (same type,
height, round) or two different proposals (same height, round); a later block carries it, and
`process_evidence` verifies it and records it once in the `evidence` state section; the transition
hands each new record to the slashing contract. Evidence is canonical: the pair is ordered by encoded bytes, so the same
misbehaviour always has the same hash and is recorded exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated

from fedray.core.block import Block, Proposal, Vote
from fedray.core.codec import KeyedBy
from fedray.core.encoding import decode, digest, encode
from fedray.core.journal import Journal
from fedray.core.sections import SectionSpec, register_section
from fedray.errors import BlockError, EncodingError, FedrayError

DUPLICATE_VOTE = "duplicate_vote"
DUPLICATE_PROPOSAL = "duplicate_proposal"
MAX_EVIDENCE_AGE = 10_000
"""Blocks after which evidence is too old to be carried."""


class EvidenceError(BlockError):
    """Evidence in a block is malformed, not a real conflict, unsigned, stale or already recorded."""

    code = "bad_evidence"


@dataclass(frozen=True)
class Evidence:
    """Two conflicting messages `a`, `b` (Vote or Proposal) of one validator, `a` < `b` canonically."""

    kind: str
    a: Vote | Proposal
    b: Vote | Proposal

    @staticmethod
    def of(first: Vote | Proposal, second: Vote | Proposal) -> Evidence:
        kind = DUPLICATE_VOTE if isinstance(first, Vote) else DUPLICATE_PROPOSAL
        a, b = sorted((first, second), key=lambda m: encode(m.to_canonical()))
        return Evidence(kind, a, b)

    @property
    def offender(self) -> bytes:
        return self.a.validator if isinstance(self.a, Vote) else self.a.proposer

    @property
    def height(self) -> int:
        return self.a.height

    def to_bytes(self) -> bytes:
        return encode([self.kind, self.a.to_canonical(), self.b.to_canonical()])

    def hash(self) -> bytes:
        return digest(self.to_bytes())

    @staticmethod
    def from_bytes(raw: bytes) -> Evidence:
        value = decode(raw)
        if not isinstance(value, list) or len(value) != 3:
            raise EncodingError("evidence is [kind, message, message]")
        kind, a, b = value
        if kind == DUPLICATE_VOTE:
            return Evidence(kind, Vote.from_canonical(a), Vote.from_canonical(b))
        if kind == DUPLICATE_PROPOSAL:
            return Evidence(kind, Proposal.from_canonical(a), Proposal.from_canonical(b))
        raise EncodingError(f"unknown evidence kind {kind!r}")

    def verify(self, chain_id: str) -> None:
        """Raise `EvidenceError` unless `a` and `b` are validly signed, conflicting messages of one
        validator for the same height, round (and vote type), in canonical order."""
        a, b = self.a, self.b
        if encode(a.to_canonical()) >= encode(b.to_canonical()):
            raise EvidenceError("evidence messages are not in canonical order (or identical)")
        if isinstance(a, Vote) and isinstance(b, Vote):
            same_slot = (a.type, a.height, a.round, a.validator) == (
                b.type,
                b.height,
                b.round,
                b.validator,
            )
        elif isinstance(a, Proposal) and isinstance(b, Proposal):
            same_slot = (a.height, a.round, a.proposer) == (b.height, b.round, b.proposer)
        else:
            raise EvidenceError("evidence mixes a vote and a proposal")
        if not same_slot:
            raise EvidenceError("evidence messages are for different slots or validators")
        if a.block_hash == b.block_hash:
            raise EvidenceError("evidence messages do not conflict (same block)")
        if not (a.is_valid(chain_id) and b.is_valid(chain_id)):
            raise EvidenceError("evidence carries an invalid signature")


@dataclass(frozen=True)
class EvidenceRecord:
    """What the chain keeps of a piece of evidence: enough to penalize once and to audit."""

    kind: str
    height: int  # height of the misbehaviour
    offender: bytes
    proof_digest: bytes  # hash of the evidence bytes
    included_at: int  # height of the block that carried it


Records = Annotated[Mapping[bytes, EvidenceRecord], KeyedBy("proof_digest")]
EVIDENCE_SECTION = register_section(SectionSpec("evidence", Records, lambda: MappingProxyType({})))


def process_evidence(journal: Journal, block: Block) -> list[EvidenceRecord]:
    """Verify and record each evidence item of `block`; any bad item rejects the block. Returns the
    new records, in block order, for the slashing contract."""
    records = dict(journal.section("evidence"))
    new: list[EvidenceRecord] = []
    for raw in block.evidence:
        try:
            ev = Evidence.from_bytes(raw)
        except FedrayError as exc:
            raise EvidenceError(f"malformed evidence: {exc}") from None
        ev.verify(journal.chain_id)  # rule: a real, signed conflict
        if not 0 < ev.height < block.height:  # rule: evidence is about the past
            raise EvidenceError(f"evidence height {ev.height} is not before {block.height}")
        if block.height - ev.height > MAX_EVIDENCE_AGE:  # rule: not stale
            raise EvidenceError(f"evidence from height {ev.height} is too old")
        offender = journal.account(ev.offender)
        if offender is None or not offender.is_validator:  # rule: offender is a validator
            raise EvidenceError("evidence offender is not a validator account")
        key = ev.hash()
        if key in records:  # rule: recorded exactly once
            raise EvidenceError("evidence is already recorded")
        record = EvidenceRecord(ev.kind, ev.height, ev.offender, key, block.height)
        records[key] = record
        journal.set_section("evidence", MappingProxyType(dict(sorted(records.items()))))
        new.append(record)
    return new
