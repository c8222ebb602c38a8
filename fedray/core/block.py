"""Blocks, consensus votes and proposals, and commit certificates.

A block's hash is the digest of its header; the header binds the body through the transaction
Merkle root, the digest of the previous block's commit certificate (`last_commit`, carried in the body
as in Tendermint, so rewards can follow who signed) and the evidence root. `state_root` is the root of
the state *after the previous block* (execution trails consensus by one block), `time` is chosen by
the proposer and must grow strictly.

Votes and proposals are defined here, not in `consensus/`, because the core verifies certificates and
equivocation evidence made of them; the engine only produces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fedray.core.crypto import (
    DOMAIN_PROPOSAL,
    DOMAIN_VOTE,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    PrivateKey,
    is_valid_signature,
)
from fedray.core.encoding import DIGEST_SIZE, decode, digest, encode, hash_value, merkle_root
from fedray.core.state import ValidatorSet
from fedray.errors import CertificateError, EncodingError, FedrayError

PREVOTE = 1
PRECOMMIT = 2
VOTE_TYPES = {PREVOTE: "prevote", PRECOMMIT: "precommit"}
NIL = b""
"""A vote for nothing (nil) carries the empty block hash."""


@dataclass(frozen=True)
class Vote:
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

    def to_canonical(self) -> list[Any]:
        return [self.type, self.height, self.round, self.block_hash, self.validator, self.signature]

    @staticmethod
    def from_canonical(value: Any) -> Vote:
        _expect_array(value, 6, "vote")
        vote = Vote(*value)
        _expect_ints(vote.type, vote.height, vote.round)
        _expect_bytes(vote.block_hash, vote.validator, vote.signature)
        return vote


@dataclass(frozen=True)
class Proposal:
    """A proposer's signed claim that `block_hash` is its block for (height, round); `pol_round` is
    the round of the proof-of-lock it re-proposes (-1 if none), as in Tendermint."""

    height: int
    round: int
    pol_round: int
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

    def to_canonical(self) -> list[Any]:
        return [
            self.height,
            self.round,
            self.pol_round,
            self.block_hash,
            self.proposer,
            self.signature,
        ]

    @staticmethod
    def from_canonical(value: Any) -> Proposal:
        _expect_array(value, 6, "proposal")
        proposal = Proposal(*value)
        _expect_ints(proposal.height, proposal.round, proposal.pol_round)
        _expect_bytes(proposal.block_hash, proposal.proposer, proposal.signature)
        return proposal


@dataclass(frozen=True)
class CommitCertificate:
    """Precommits of more than 2/3 of the voting power for one block: proof that it is final."""

    height: int
    round: int
    block_hash: bytes
    signatures: tuple[tuple[bytes, bytes], ...]  # (validator key, precommit signature), sorted

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

    def to_canonical(self) -> list[Any]:
        return [self.height, self.round, self.block_hash, [[k, s] for k, s in self.signatures]]

    @staticmethod
    def from_canonical(value: Any) -> CommitCertificate:
        _expect_array(value, 4, "commit certificate")
        height, round_, block_hash, sigs = value
        _expect_ints(height, round_)
        if not isinstance(sigs, list) or not all(isinstance(s, list) and len(s) == 2 for s in sigs):
            raise EncodingError("certificate signatures must be [key, signature] pairs")
        for k, s in sigs:
            _expect_bytes(k, s)
            if len(k) != PUBLIC_KEY_SIZE or len(s) != SIGNATURE_SIZE:
                raise EncodingError("certificate signature pair has wrong sizes")
        return CommitCertificate(height, round_, block_hash, tuple((k, s) for k, s in sigs))

    def to_bytes(self) -> bytes:
        return encode(self.to_canonical())

    @staticmethod
    def from_bytes(raw: bytes) -> CommitCertificate:
        return CommitCertificate.from_canonical(decode(raw))

    def hash(self) -> bytes:
        return hash_value(self.to_canonical())


@dataclass(frozen=True)
class Header:
    chain_id: str
    height: int
    time: int  # milliseconds since the epoch, chosen by the proposer
    prev_hash: bytes
    tx_root: bytes
    state_root: bytes  # root after the previous block
    proposer: bytes
    validators_hash: bytes  # the set that must sign this block
    last_commit_hash: bytes  # digest of the previous block's certificate (empty at height 1)
    evidence_root: bytes

    def to_canonical(self) -> list[Any]:
        return [
            self.chain_id,
            self.height,
            self.time,
            self.prev_hash,
            self.tx_root,
            self.state_root,
            self.proposer,
            self.validators_hash,
            self.last_commit_hash,
            self.evidence_root,
        ]

    @staticmethod
    def from_canonical(value: Any) -> Header:
        _expect_array(value, 10, "header")
        header = Header(*value)
        if not isinstance(header.chain_id, str):
            raise EncodingError("header chain id must be text")
        _expect_ints(header.height, header.time)
        _expect_bytes(
            header.prev_hash,
            header.tx_root,
            header.state_root,
            header.proposer,
            header.validators_hash,
            header.last_commit_hash,
            header.evidence_root,
        )
        for name in ("prev_hash", "tx_root", "state_root", "validators_hash", "evidence_root"):
            if len(getattr(header, name)) != DIGEST_SIZE:
                raise EncodingError(f"header {name} must be a {DIGEST_SIZE}-byte digest")
        return header

    def hash(self) -> bytes:
        return hash_value(self.to_canonical())


@dataclass(frozen=True)
class Block:
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

    def to_canonical(self) -> list[Any]:
        return [
            self.header.to_canonical(),
            list(self.txs),
            None if self.last_commit is None else self.last_commit.to_canonical(),
            list(self.evidence),
        ]

    @cached_property
    def raw(self) -> bytes:
        return encode(self.to_canonical())

    @staticmethod
    def from_bytes(raw: bytes) -> Block:
        try:
            value = decode(raw)
            _expect_array(value, 4, "block")
            header_v, txs, commit_v, evidence = value
            if not isinstance(txs, list) or not all(isinstance(t, bytes) for t in txs):
                raise EncodingError("block transactions must be byte strings")
            if not isinstance(evidence, list) or not all(isinstance(e, bytes) for e in evidence):
                raise EncodingError("block evidence must be byte strings")
            block = Block(
                Header.from_canonical(header_v),
                tuple(txs),
                None if commit_v is None else CommitCertificate.from_canonical(commit_v),
                tuple(evidence),
            )
        except FedrayError:
            raise
        except (TypeError, ValueError) as exc:
            raise EncodingError(f"malformed block: {exc}") from None
        block.__dict__["raw"] = bytes(raw)
        return block


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
) -> Block:
    header = Header(
        chain_id,
        height,
        time,
        prev_hash,
        tx_root(txs),
        state_root,
        proposer,
        validators.hash(),
        commit_hash(last_commit),
        evidence_root(evidence),
    )
    return Block(header, tuple(txs), last_commit, tuple(evidence))


def _expect_array(value: Any, n: int, what: str) -> None:
    if not isinstance(value, list) or len(value) != n:
        raise EncodingError(f"a {what} is an array of {n} fields")


def _expect_ints(*values: Any) -> None:
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool):
            raise EncodingError("expected an integer field")


def _expect_bytes(*values: Any) -> None:
    for v in values:
        if not isinstance(v, bytes):
            raise EncodingError("expected a byte-string field")
