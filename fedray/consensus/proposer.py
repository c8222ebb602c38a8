"""Proposer selection: CometBFT's proposer-priority weighted round robin, in exact integers.

Each validator carries a priority. One *increment* adds every validator's power to its priority, picks
the highest priority (ties: the smaller key) as proposer and subtracts the total power from it. Over
any window of `total_power / gcd(powers)` increments each validator proposes exactly in proportion to
its power, and the choice depends on nothing but the sequence of validator sets, so every honest node
computes the same proposer for every (height, round).

`ProposerSchedule` is the priority state at a height (after that height's one increment);
round `r` of the height is `r` further increments of a copy, as in CometBFT's `enterNewRound`.
`next_height(validators)` applies a validator-set change (new validators start at
-1.125 x total power, so leaving and re-joining does not buy an early turn), then increments once.
Before each batch of increments, priorities are rescaled into a window of 2 x total power and
centred on their average, as CometBFT does; division rounds exactly as Go's integer division there.

`encode_schedule` / `decode_schedule` are the schedule's canonical bytes, tagged with the height it
belongs to, so a restarted node can resume without replaying the chain; decoding is strict.

Deliberately ignored: CometBFT's int64 clipping (Python integers are exact, stakes are uint64) and its
ordering of validators by power (only the tie-break by key matters for the choice).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fedray.core.encoding import decode, encode
from fedray.core.state import ValidatorSet
from fedray.errors import DefinitionError, EncodingError

PRIORITY_WINDOW_FACTOR = 2


def _trunc_div(a: int, b: int) -> int:
    """Go's `a / b` for int64 (truncates toward zero); b > 0."""
    return -((-a) // b) if a < 0 else a // b


@dataclass(frozen=True)
class ProposerSchedule:
    """Validators (key, power, priority), sorted by key, and the proposer of round 0."""

    members: tuple[tuple[bytes, int, int], ...]
    proposer0: bytes

    @property
    def total_power(self) -> int:
        return sum(p for _, p, _ in self.members)

    @staticmethod
    def genesis(validators: ValidatorSet) -> ProposerSchedule:
        """The schedule of the first height (CometBFT `NewValidatorSet`: add all, increment once)."""
        return _changed((), validators).incremented(1)

    @staticmethod
    def replay(sets: Iterable[ValidatorSet]) -> ProposerSchedule:
        """The schedule after a chain whose heights 1, 2, ... were signed by `sets` (in order)."""
        schedule: ProposerSchedule | None = None
        for vs in sets:
            schedule = (
                ProposerSchedule.genesis(vs) if schedule is None else schedule.next_height(vs)
            )
        if schedule is None:
            raise DefinitionError("replay needs at least one validator set")
        return schedule

    def next_height(self, validators: ValidatorSet) -> ProposerSchedule:
        """The schedule of the next height, signed by `validators`."""
        current = tuple((k, p) for k, p, _ in self.members)
        base = self if current == validators.members else _changed(self.members, validators)
        return base.incremented(1)

    def incremented(self, times: int) -> ProposerSchedule:
        """CometBFT `IncrementProposerPriority(times)`: rescale, centre, then `times` increments."""
        if not self.members:
            raise DefinitionError("a proposer schedule needs at least one validator")
        keys = [k for k, _, _ in self.members]
        powers = [p for _, p, _ in self.members]
        prios = _centred(_rescaled([q for _, _, q in self.members], sum(powers)))
        total = sum(powers)
        proposer = self.proposer0
        for _ in range(times):
            prios = [q + p for q, p in zip(prios, powers, strict=True)]
            best = 0
            for i in range(1, len(prios)):
                # Highest priority wins; keys are sorted, so the first of equals is the smaller key.
                if prios[i] > prios[best]:
                    best = i
            prios[best] -= total
            proposer = keys[best]
        members = tuple(zip(keys, powers, prios, strict=True))
        return ProposerSchedule(members, proposer)

    def proposer(self, round_: int) -> bytes:
        """The proposer of `round_` at this height."""
        return self.proposer0 if round_ == 0 else self.incremented(round_).proposer0


def _rescaled(prios: list[int], total: int) -> list[int]:
    window = PRIORITY_WINDOW_FACTOR * total
    diff = max(prios) - min(prios)
    if window == 0 or diff <= window:
        return prios
    ratio = (diff + window - 1) // window
    return [_trunc_div(q, ratio) for q in prios]


def _centred(prios: list[int]) -> list[int]:
    avg = sum(prios) // len(prios)  # Go big.Int.Div: Euclidean, i.e. floor for a positive divisor
    return [q - avg for q in prios]


def _changed(old: tuple[tuple[bytes, int, int], ...], validators: ValidatorSet) -> ProposerSchedule:
    """CometBFT `updateWithChangeSet` for a full new set: keep priorities of staying validators,
    start newcomers at -1.125 x (power after updates, before removals), rescale and centre."""
    if not validators.members:
        raise DefinitionError("a proposer schedule needs at least one validator")
    old_prio = {k: q for k, _, q in old}
    new_power = dict(validators.members)
    before_removals = sum(new_power.values()) + sum(p for k, p, _ in old if k not in new_power)
    newcomer = -(before_removals + (before_removals >> 3))
    prios = [old_prio.get(k, newcomer) for k, _ in validators.members]
    prios = _centred(_rescaled(prios, validators.total_power))
    members = tuple((k, p, q) for (k, p), q in zip(validators.members, prios, strict=True))
    return ProposerSchedule(members, b"")


def encode_schedule(height: int, schedule: ProposerSchedule) -> bytes:
    """`[height, [[key, power, priority], ...], proposer0]` in canonical encoding."""
    members = [[key, power, priority] for key, power, priority in schedule.members]
    return encode([height, members, schedule.proposer0])


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def decode_schedule(raw: bytes) -> tuple[int, ProposerSchedule]:
    """(height, schedule) from `encode_schedule`'s bytes; `EncodingError` for anything else: members
    sorted by key without repeats, positive powers, and a proposer that is one of them."""
    value = decode(raw)
    if not (
        isinstance(value, list)
        and len(value) == 3
        and _is_int(value[0])
        and value[0] >= 0
        and isinstance(value[1], list)
        and value[1]
        and isinstance(value[2], bytes)
    ):
        raise EncodingError("a stored schedule is [height, members, proposer0]")
    members: list[tuple[bytes, int, int]] = []
    for m in value[1]:
        if not (
            isinstance(m, list)
            and len(m) == 3
            and isinstance(m[0], bytes)
            and _is_int(m[1])
            and m[1] > 0
            and _is_int(m[2])
        ):
            raise EncodingError("a schedule member is [key, power > 0, priority]")
        if members and m[0] <= members[-1][0]:
            raise EncodingError("schedule members are sorted by key, each key once")
        members.append((m[0], m[1], m[2]))
    if value[2] not in {k for k, _, _ in members}:
        raise EncodingError("the schedule's proposer is not one of its members")
    return value[0], ProposerSchedule(tuple(members), value[2])
