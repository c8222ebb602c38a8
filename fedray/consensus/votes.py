"""Vote bookkeeping for one height: per (round, type), who voted for what, the power behind each
block hash, and the conflicts that make equivocation evidence.

Counting follows the paper: "2f+1 PREVOTE for id(v)" means votes for v from distinct validators, so a
validator that equivocates is counted for each value it signed (at most once per value) and once in
the power that voted at all. This is what lets an honest node see a polka that other honest nodes saw
through an equivocator's vote they received and it did not at first (CometBFT reaches the same with
"peer maj23" claims); it does not weaken safety, since any two quorums still share an honest
validator. To bound memory, a conflicting vote is counted only when the engine says its value
matters (nil or a proposed block); otherwise it only yields evidence.

A `VoteSet` is immutable; `add` returns a new set. Thresholds are in integers: a quorum is more than
2/3 of the total power (`3 * power > 2 * total`), "f+1" is more than 1/3 (`3 * power > total`).

Deliberately ignored: signature checks (the engine verifies before adding) and peer bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from fedray.core.block import NIL, Vote


def is_quorum(power: int, total: int) -> bool:
    """More than 2/3 of the voting power ("2f+1")."""
    return 3 * power > 2 * total


def is_one_third(power: int, total: int) -> bool:
    """More than 1/3 of the voting power ("f+1"): at least one honest validator among them."""
    return 3 * power > total


@dataclass(frozen=True)
class VoteSet:
    """Votes of one type at one (height, round)."""

    first: Mapping[bytes, Vote] = field(default_factory=dict)  # validator -> its first vote
    conflicting: Mapping[bytes, tuple[Vote, ...]] = field(
        default_factory=dict
    )  # counted later ones
    power_for: Mapping[bytes, int] = field(default_factory=dict)  # block hash (or NIL) -> power
    power_any: int = 0  # each validator once

    def add(self, vote: Vote, power: int, count_conflict: bool) -> tuple[VoteSet, Vote | None]:
        """Count `vote`: (new set, None) for a validator's first vote, (self, None) for a duplicate
        (a value it already voted for here), and (set, its first vote) for a conflicting one, which
        is counted for its value only if `count_conflict`."""
        earlier = self.first.get(vote.validator)
        if earlier is None:
            first = dict(self.first)
            first[vote.validator] = vote
            return VoteSet(
                first, self.conflicting, self._plus(vote, power), self.power_any + power
            ), None
        others = self.conflicting.get(vote.validator, ())
        if earlier.block_hash == vote.block_hash or any(
            o.block_hash == vote.block_hash for o in others
        ):
            return self, None
        if not count_conflict:
            return self, earlier
        conflicting = dict(self.conflicting)
        conflicting[vote.validator] = (*others, vote)
        return VoteSet(self.first, conflicting, self._plus(vote, power), self.power_any), earlier

    def _plus(self, vote: Vote, power: int) -> dict[bytes, int]:
        power_for = dict(self.power_for)
        power_for[vote.block_hash] = power_for.get(vote.block_hash, 0) + power
        return power_for

    def has(self, vote: Vote) -> bool:
        """True if this exact vote (same signature) is already counted."""
        if self.first.get(vote.validator) == vote:
            return True
        return vote in self.conflicting.get(vote.validator, ())

    def all_votes(self) -> Iterator[Vote]:
        yield from self.first.values()
        for others in self.conflicting.values():
            yield from others

    def voters(self) -> Iterator[bytes]:
        return iter(self.first)

    def quorum_for(self, block_hash: bytes, total: int) -> bool:
        return is_quorum(self.power_for.get(block_hash, 0), total)

    def quorum_any(self, total: int) -> bool:
        return is_quorum(self.power_any, total)

    def quorum_value(self, total: int) -> bytes | None:
        """A non-nil block hash with a quorum, if any (only one unless > 1/3 equivocate)."""
        for block_hash, power in self.power_for.items():
            if block_hash != NIL and is_quorum(power, total):
                return block_hash
        return None

    def votes_for(self, block_hash: bytes) -> list[Vote]:
        return [v for v in self.all_votes() if v.block_hash == block_hash]


EMPTY_VOTE_SET = VoteSet()
