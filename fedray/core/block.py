"""Blocks, consensus votes and proposals, and commit certificates.

A block's hash is the digest of its header; the header binds the body through the transaction
Merkle root, the digest of the previous block's commit certificate (`last_commit`, carried in the body
as in Tendermint, so rewards can follow who signed) and the evidence root. `state_root` is the root of
the state *after the previous block* (execution trails consensus by one block), `time` is chosen by
the proposer and must grow by 1 ms to `max_block_time_step_ms` per block (`proposal_time` is how an
honest proposer picks it), and `vrf_proof` proves the proposer's VRF output for the height, the
randomness that selects clients (`beacon.py`).

Votes and proposals are defined here, not in `consensus/`, because the core verifies certificates and
equivocation evidence made of them; the engine only produces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from fedray.core.codec import Digest, Encodable, Signed, Size
from fedray.core.crypto import (
    DOMAIN_PROPOSAL,
    DOMAIN_VOTE,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    PrivateKey,
    is_valid_signature,
)
from fedray.core.encoding import decode, digest, encode, hash_value, merkle_root
from fedray.core.state import ValidatorSet
from fedray.errors import CertificateError

PREVOTE = 1
PRECOMMIT = 2
VOTE_TYPES = {PREVOTE: "prevote", PRECOMMIT: "precommit"}
NIL = b""
"""A vote for nothing (nil) carries the empty block hash."""
PublicKey = Annotated[bytes, Size(PUBLIC_KEY_SIZE)]
Signature = Annotated[bytes, Size(SIGNATURE_SIZE)]


@dataclass(frozen=True)
class Vote(Encodable):
    """A signed prevote or precommit for `block_hash` (NIL for a nil vote) at (height, round)."""

    type: int
    height: int
    round: int
    block_hash: bytes
    validator: bytes
    signature: bytes = b""

    def sign_bytes(self) -> bytes:
        return encode([self.type, self.height, self.round, self.block_hash])

    def signed(self, key: PrivateKey, chain_id: str) -> Vote:
        return Vote(
            self.type,
            self.height,
            self.round,
            self.block_hash,
            key.public_key,
            key.sign(DOMAIN_VOTE, chain_id, self.sign_bytes()),
        )

    def is_valid(self, chain_id: str) -> bool:
        return self.type in VOTE_TYPES and is_valid_signature(
            self.validator, DOMAIN_VOTE, chain_id, self.sign_bytes(), self.signature
        )


@dataclass(frozen=True)
class Proposal(Encodable):
    """A proposer's signed claim that `block_hash` is its block for (height, round); `pol_round` is
    the round of the proof-of-lock it re-proposes (-1 if none), as in Tendermint."""

    height: int
    round: int
    pol_round: Signed  # -1: none
    block_hash: bytes
    proposer: bytes
    signature: bytes = b""

    def sign_bytes(self) -> bytes:
        return encode([self.height, self.round, self.pol_round, self.block_hash])

    def signed(self, key: PrivateKey, chain_id: str) -> Proposal:
        return Proposal(
            self.height,
            self.round,
            self.pol_round,
            self.block_hash,
            key.public_key,
            key.sign(DOMAIN_PROPOSAL, chain_id, self.sign_bytes()),
        )

    def is_valid(self, chain_id: str) -> bool:
        return is_valid_signature(
            self.proposer, DOMAIN_PROPOSAL, chain_id, self.sign_bytes(), self.signature
        )


@dataclass(frozen=True)
class CommitCertificate(Encodable):
    """Precommits of more than 2/3 of the voting power for one block: proof that it is final."""

    height: int
    round: int
    block_hash: bytes
    signatures: tuple[
        tuple[PublicKey, Signature], ...
    ]  # (validator key, precommit signature), sorted

    @staticmethod
    def from_votes(votes: list[Vote]) -> CommitCertificate:
        first = votes[0]
        sigs = {v.validator: v.signature for v in votes}
        return CommitCertificate(
            first.height, first.round, first.block_hash, tuple(sorted(sigs.items()))
        )

    def votes(self) -> list[Vote]:
        return [
            Vote(PRECOMMIT, self.height, self.round, self.block_hash, k, s)
            for k, s in self.signatures
        ]

    def signers(self) -> tuple[bytes, ...]:
        return tuple(k for k, _ in self.signatures)

    def verify(
        self,
        chain_id: str,
        validators: ValidatorSet,
        block_hash: bytes | None = None,
        height: int | None = None,
    ) -> None:
        """Raise `CertificateError` unless this certifies `block_hash` at `height` with >2/3 of
        `validators`' power in distinct, valid precommit signatures."""
        if block_hash is not None and self.block_hash != block_hash:
            raise CertificateError(
                f"certificate is for block {self.block_hash.hex()[:16]}, "
                f"expected {block_hash.hex()[:16]}"
            )
        if height is not None and self.height != height:
            raise CertificateError(f"certificate is for height {self.height}, expected {height}")
        if self.block_hash == NIL:
            raise CertificateError("a commit certificate cannot certify nil")
        keys = [k for k, _ in self.signatures]
        if keys != sorted(set(keys)):
            raise CertificateError("certificate signers are unsorted or duplicated")
        power = dict(validators.members)
        signed = 0
        for vote in self.votes():
            if vote.validator not in power:
                raise CertificateError(f"signer {vote.validator.hex()[:16]} is not a validator")
            if not vote.is_valid(chain_id):
                raise CertificateError(f"bad precommit signature by {vote.validator.hex()[:16]}")
            signed += power[vote.validator]
        if 3 * signed <= 2 * validators.total_power:
            raise CertificateError(
                f"certificate holds {signed} of {validators.total_power} voting power, "
                "needs more than 2/3"
            )

    def to_bytes(self) -> bytes:
        return encode(self.to_canonical())

    @staticmethod
    def from_bytes(raw: bytes) -> CommitCertificate:
        return CommitCertificate.from_canonical(decode(raw))

    def hash(self) -> bytes:
        return hash_value(self.to_canonical())


@dataclass(frozen=True)
class Header(Encodable):
    chain_id: str
    height: int
    time: int  # milliseconds since the epoch, chosen by the proposer
    prev_hash: Digest
    tx_root: Digest
    state_root: Digest  # root after the previous block
    proposer: bytes
    vrf_proof: bytes  # the proposer's ECVRF proof over the height's beacon input (beacon.py)
    validators_hash: Digest  # the set that must sign this block
    last_commit_hash: bytes  # digest of the previous block's certificate (empty at height 1)
    evidence_root: Digest

    def hash(self) -> bytes:
        return hash_value(self.to_canonical())


@dataclass(frozen=True)
class Block(Encodable):
    """A header and its body: signed transactions (wire bytes), the previous block's commit
    certificate, and evidence records (canonical bytes, checked by the slashing contract)."""

    header: Header
    txs: tuple[bytes, ...]
    last_commit: CommitCertificate | None
    evidence: tuple[bytes, ...] = ()

    @cached_property
    def hash(self) -> bytes:
        return self.header.hash()

    @property
    def height(self) -> int:
        return self.header.height

    @cached_property
    def raw(self) -> bytes:
        return encode(self.to_canonical())

    @staticmethod
    def from_bytes(raw: bytes) -> Block:
        block = Block.from_canonical(decode(raw))
        block.__dict__["raw"] = bytes(raw)  # decode() refuses non-canonical input: raw == encode()
        return block


def proposal_time(last_block_time: int, max_step_ms: int, now_ms: int) -> int:
    """The time an honest proposer gives its block: its clock, kept inside the header rule (after
    the parent, at most `max_step_ms` later). After a long halt the chain's time lags the clock
    and catches up by `max_step_ms` per block."""
    return min(max(last_block_time + 1, now_ms), last_block_time + max_step_ms)


def tx_root(txs: tuple[bytes, ...] | list[bytes]) -> bytes:
    return merkle_root([digest(t) for t in txs])


def evidence_root(evidence: tuple[bytes, ...] | list[bytes]) -> bytes:
    return merkle_root([digest(e) for e in evidence])


def commit_hash(commit: CommitCertificate | None) -> bytes:
    return b"" if commit is None else commit.hash()


def make_block(
    chain_id: str,
    height: int,
    time: int,
    prev_hash: bytes,
    state_root: bytes,
    proposer: bytes,
    validators: ValidatorSet,
    txs: list[bytes] | tuple[bytes, ...],
    last_commit: CommitCertificate | None,
    evidence: list[bytes] | tuple[bytes, ...] = (),
    vrf_proof: bytes = b"",
) -> Block:
    header = Header(
        chain_id,
        height,
        time,
        prev_hash,
        tx_root(txs),
        state_root,
        proposer,
        vrf_proof,
        validators.hash(),
        commit_hash(last_commit),
        evidence_root(evidence),
    )
    return Block(header, tuple(txs), last_commit, tuple(evidence))
