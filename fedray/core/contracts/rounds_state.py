"""The `rounds` state section: the open round (selection, updates, turns) and the closed rounds'
results, and how the state root hashes it.

The closed rounds only grow, so the root hashes them as a hash chain (`hashchain.chain_head`), not
as a list: a block's root costs what it changed, not how many rounds the run has had (hashing the
whole list cost 55 ms a block after 40 rounds of 100 updates). `used_payloads` (every payload a
closed round used, the zero update's excepted) follows from the results, so the root leaves it out;
a decoded section (a snapshot) is refused when the two disagree.

The transactions and the round's lifecycle are in `rounds.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fedray.core.codec import encode_as
from fedray.core.encoding import Canonical
from fedray.core.hashchain import chain_head
from fedray.core.precompiles import UpdateVerdict
from fedray.core.sections import SectionSpec, register_section
from fedray.errors import FieldTypeError


@dataclass(frozen=True)
class UpdateRecord:
    client: bytes
    payload_hash: bytes
    n_samples: int
    size: int
    tx_hash: bytes


@dataclass(frozen=True)
class RoundResult:
    """A closed round: what went in, what came out, and why it closed ("quota": every selected
    client answered; "deadline"). `skipped`: selected clients that declared a missed update."""

    round: int
    opened_at: int
    closed_at: int
    reason: str
    global_before: bytes
    global_after: bytes
    selected: tuple[bytes, ...]
    updates: tuple[UpdateRecord, ...]
    verdicts: tuple[UpdateVerdict, ...]
    skipped: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class RoundsState:
    """The `rounds` section. `round` is the open round's number (or the next one when closed)."""

    model_nbytes: int = 0  # exact payload size of an update (int32 fixed point, whole model)
    global_hash: bytes = b""
    strategy_state_hash: bytes = b""
    round: int = 0
    open: bool = False
    opened_at: int = 0
    deadline: int = 0  # the deadline needs this height (and the block time `deadline_ms`)
    selected: tuple[bytes, ...] = ()
    updates: tuple[UpdateRecord, ...] = ()
    results: tuple[RoundResult, ...] = ()
    used_payloads: frozenset[bytes] = field(default_factory=frozenset)
    excluded: tuple[tuple[bytes, bytes], ...] = ()  # (client, payload) refused as copies this round
    zero_hash: bytes = b""  # digest of the all-zero update: free riding, judged by its flags
    skipped: tuple[bytes, ...] = ()  # selected clients that declared a missed update this round
    deadline_ms: int = 0  # the deadline needs this block time (and the height `deadline`)

    def answered(self) -> tuple[bytes, ...]:
        """Selected clients that have used their turn this round (included, refused or skipped)."""
        return (
            tuple(u.client for u in self.updates)
            + tuple(c for c, _ in self.excluded)
            + self.skipped
        )

    def submitted(self) -> int:
        """How many selected clients have used their turn this round."""
        return len(self.updates) + len(self.excluded) + len(self.skipped)

    def past_deadline(self, height: int, time_ms: int) -> bool:
        """Whether a block at (height, time) is at or past the open round's deadline."""
        return height >= self.deadline and time_ms >= self.deadline_ms


def used_payloads_of(results: tuple[RoundResult, ...], zero_hash: bytes) -> frozenset[bytes]:
    """The payloads the closed rounds `results` used, the all-zero update's excepted."""
    return frozenset(u.payload_hash for r in results for u in r.updates) - {zero_hash}


def _result_form(result: RoundResult) -> Canonical:
    return encode_as(RoundResult, result)


def hashed_form(rs: RoundsState) -> Canonical:
    """What the state root hashes: the section without its history, and the history's chain head."""
    open_part = replace(rs, results=(), used_payloads=frozenset())
    return [encode_as(RoundsState, open_part), chain_head(rs.results, _result_form)]


def check_decoded(rs: RoundsState) -> None:
    """A decoded section's `used_payloads` must be what its results used (the root covers only
    the results)."""
    if rs.used_payloads != used_payloads_of(rs.results, rs.zero_hash):
        raise FieldTypeError("rounds.used_payloads does not match the closed rounds' updates")


ROUNDS = register_section(
    SectionSpec("rounds", RoundsState, RoundsState, hashed_form=hashed_form, check=check_decoded)
)


def genesis_rounds(global_hash: bytes, model_nbytes: int, zero_hash: bytes = b"") -> RoundsState:
    """The section a genesis names: the initial model's digest, the update size it implies, and
    the digest of the all-zero update of that layout."""
    return RoundsState(model_nbytes=model_nbytes, global_hash=global_hash, zero_hash=zero_hash)
