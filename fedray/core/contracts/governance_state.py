"""The `governance` state section: proposals and approved model releases, and the deposit escrow.

Owns the frozen dataclasses (their canonical form follows from their fields, see `codec`), the
section's registration, and the escrow that `economy` adds to the supply identity. The rules
that change these values live in `governance.py`.

Deliberately ignored: indexes over proposals (the end-of-block step scans them; there are few).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Annotated, Any

from fedray.core.codec import KeyedBy
from fedray.core.journal import Journal
from fedray.core.sections import SectionSpec, register_section

DEPOSIT, VOTING, PASSED = "deposit", "voting", "passed"
EXPIRED, REJECTED, VETOED, EXECUTED, FAILED = "expired", "rejected", "vetoed", "executed", "failed"
HOLDING = (DEPOSIT, VOTING)  # statuses whose deposits are in escrow
_EMPTY: MappingProxyType[Any, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Proposal:
    """One proposal. `content` is (param_key, param_value, account, role, model_hash, terms);
    `tally` is (yes, no, abstain, veto) power, kept current while voting."""

    id: int
    kind: str
    content: tuple[str, str, bytes, str, bytes, str]
    proposer: bytes
    expedited: bool
    submit_height: int
    deposit_end: int
    deposits: MappingProxyType[bytes, int]
    status: str = DEPOSIT
    voting_start: int = 0
    voting_end: int = 0
    snapshot: MappingProxyType[bytes, int] = field(default_factory=lambda: _EMPTY)
    votes: MappingProxyType[bytes, str] = field(default_factory=lambda: _EMPTY)
    tally: tuple[int, int, int, int] = (0, 0, 0, 0)
    execute_height: int = 0
    result: str = ""  # why rejected ("no_quorum", "threshold"), or the failed execution's code

    @property
    def total_deposit(self) -> int:
        return sum(self.deposits.values())


@dataclass(frozen=True)
class ModelRelease:
    """A model approved for release: its hash, the terms of use, when and by which proposal."""

    model_hash: bytes
    terms: str
    height: int
    proposal_id: int


@dataclass(frozen=True)
class GovernanceState:
    """The `governance` section: proposals by id, and the model releases governance approved."""

    next_id: int = 1
    proposals: Annotated[MappingProxyType[int, Proposal], KeyedBy("id")] = field(
        default_factory=lambda: _EMPTY
    )
    releases: tuple[ModelRelease, ...] = ()


def escrowed(gs: GovernanceState) -> int:
    """Tokens held by governance: the deposits of proposals in deposit or voting."""
    return sum(p.total_deposit for p in gs.proposals.values() if p.status in HOLDING)


GOVERNANCE = register_section(SectionSpec("governance", GovernanceState, GovernanceState))


def gov_section(journal: Journal) -> GovernanceState:
    return journal.section("governance")  # type: ignore[no-any-return]


def put_proposal(journal: Journal, p: Proposal) -> None:
    gs = gov_section(journal)
    journal.set_section(
        "governance", replace(gs, proposals=MappingProxyType({**gs.proposals, p.id: p}))
    )
