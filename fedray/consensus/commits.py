"""Late precommits: the certificate of the last decided block keeps growing after the decision.

A node decides on the first precommits that make more than 2/3 of the power, so its certificate
lacks whoever precommitted a little later. The next block's `last_commit` is what the slashing
contract reads to judge downtime (and the incentives contract to reward signers), so a validator
that is always a little slower than the quorum would look offline. The engine therefore keeps
accepting precommits for the block it decided, in the round it decided it, from the set that signed
that height, after it moved to the next height; the next proposer waits a bounded pause
(`TimeoutConfig.commit_ms`, CometBFT's `timeout_commit`) or until every validator has signed, and
the application carries the grown certificate as `last_commit`.

The validity rule of a certificate is unchanged (`CommitCertificate.verify`: distinct valid
precommits of more than 2/3 of the power for the block); a larger one is just as valid.

Deliberately ignored: precommits of other rounds (a certificate names one round) and persistence
(a restarted node proposes with the certificate it stored).
"""

from __future__ import annotations

from collections.abc import Mapping

from fedray.consensus.state import verified
from fedray.core.block import PRECOMMIT, CommitCertificate, Vote
from fedray.core.state import ValidatorSet


def matches(certificate: CommitCertificate, vote: Vote) -> bool:
    """Whether `vote` is a precommit `certificate` could hold (its height, round and block)."""
    return (
        vote.type == PRECOMMIT
        and vote.height == certificate.height
        and vote.round == certificate.round
        and vote.block_hash == certificate.block_hash
    )


def signed_by(certificate: CommitCertificate, validator: bytes) -> bool:
    return any(k == validator for k, _ in certificate.signatures)


def with_precommit(certificate: CommitCertificate, vote: Vote) -> CommitCertificate:
    """`certificate` plus `vote` (a matching precommit of a validator not in it yet)."""
    signatures = sorted((*certificate.signatures, (vote.validator, vote.signature)))
    return CommitCertificate(
        certificate.height, certificate.round, certificate.block_hash, tuple(signatures)
    )


def complete(certificate: CommitCertificate, powers: Mapping[bytes, int]) -> bool:
    """Every validator of the set has signed: no later precommit can come."""
    return len(certificate.signatures) >= len(powers)


def added_precommits(current: CommitCertificate, grown: CommitCertificate) -> list[Vote] | None:
    """The precommits `grown` adds to `current`, or None if it is not `current` plus some (another
    block, height or round, or a signature of `current` missing or changed)."""
    if (grown.height, grown.round, grown.block_hash) != (
        current.height,
        current.round,
        current.block_hash,
    ):
        return None
    ours = dict(current.signatures)
    theirs = dict(grown.signatures)
    if len(theirs) != len(grown.signatures) or any(theirs.get(k) != s for k, s in ours.items()):
        return None
    return [v for v in grown.votes() if v.validator not in ours]


def grows(
    chain_id: str, validators: ValidatorSet, current: CommitCertificate, grown: CommitCertificate
) -> bool:
    """Whether `grown` is `current` plus valid precommits of other members of `validators` (the set
    that signed the height): what an application checks before proposing with it."""
    added = added_precommits(current, grown)
    if not added:
        return False
    powers = dict(validators.members)
    return all(v.validator in powers and verified(v, chain_id) for v in added)
