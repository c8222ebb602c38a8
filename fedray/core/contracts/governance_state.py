"""The `governance` state section: proposals and approved model releases, and the deposit escrow.

Owns the frozen dataclasses, their canonical encoding (maps as sorted [key, value] lists), the
section's registration, and the escrow view that `economy` adds to the supply identity. The rules
that change these values live in `governance.py`.

Deliberately ignored: indexes over proposals (the end-of-block step scans them; there are few).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from fedray.core.contracts import economy
from fedray.core.journal import Journal
from fedray.core.state import SectionSpec, register_section

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
    content: tuple[Any, ...]
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

    def to_canonical(self) -> list[Any]:
        return [
            self.id,
            self.kind,
            list(self.content),
            self.proposer,
            self.expedited,
            self.submit_height,
            self.deposit_end,
            _pairs(self.deposits),
            self.status,
            self.voting_start,
            self.voting_end,
            _pairs(self.snapshot),
            _pairs(self.votes),
            list(self.tally),
            self.execute_height,
            self.result,
        ]

    @staticmethod
    def from_canonical(v: Any) -> Proposal:
        c = v[2]
        content = (c[0], c[1], bytes(c[2]), c[3], bytes(c[4]), c[5])
        return Proposal(
            v[0],
            v[1],
            content,
            bytes(v[3]),
            bool(v[4]),
            v[5],
            v[6],
            _map(v[7]),
            v[8],
            v[9],
            v[10],
            _map(v[11]),
            _map(v[12]),
            (v[13][0], v[13][1], v[13][2], v[13][3]),
            v[14],
            v[15],
        )


@dataclass(frozen=True)
class ModelRelease:
    """A model approved for release: its hash, the terms of use, when and by which proposal."""

    model_hash: bytes
    terms: str
    height: int
    proposal_id: int

    def to_canonical(self) -> list[Any]:
        return [self.model_hash, self.terms, self.height, self.proposal_id]


@dataclass(frozen=True)
class GovernanceState:
    """The `governance` section: proposals by id, and the model releases governance approved."""

    next_id: int = 1
    proposals: MappingProxyType[int, Proposal] = field(default_factory=lambda: _EMPTY)
    releases: tuple[ModelRelease, ...] = ()

    def to_canonical(self) -> list[Any]:
        return [
            self.next_id,
            [self.proposals[i].to_canonical() for i in sorted(self.proposals)],
            [r.to_canonical() for r in self.releases],
        ]

    @staticmethod
    def from_canonical(v: Any) -> GovernanceState:
        proposals = (Proposal.from_canonical(p) for p in v[1])
        releases = tuple(ModelRelease(bytes(r[0]), r[1], r[2], r[3]) for r in v[2])
        return GovernanceState(v[0], MappingProxyType({p.id: p for p in proposals}), releases)


def _pairs(mapping: MappingProxyType[bytes, Any]) -> list[list[Any]]:
    return [[k, mapping[k]] for k in sorted(mapping)]


def _map(pairs: Any) -> MappingProxyType[bytes, Any]:
    return MappingProxyType({bytes(k): v for k, v in pairs})


def escrowed(gs: GovernanceState) -> int:
    """Tokens held by governance: the deposits of proposals in deposit or voting."""
    return sum(p.total_deposit for p in gs.proposals.values() if p.status in HOLDING)


GOVERNANCE = register_section(
    SectionSpec(
        "governance", GovernanceState, GovernanceState.to_canonical, GovernanceState.from_canonical
    )
)
economy.register_escrow("governance", escrowed)


def gov_section(journal: Journal) -> GovernanceState:
    return journal.section("governance")  # type: ignore[no-any-return]


def put_proposal(journal: Journal, p: Proposal) -> None:
    gs = gov_section(journal)
    journal.set_section(
        "governance", replace(gs, proposals=MappingProxyType({**gs.proposals, p.id: p}))
    )
