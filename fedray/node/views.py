"""Read-only views of a node's state for observers (the run driver, client pools, the CLI): frozen
dataclasses of Python scalars, bytes and tuples, cheap to send over Ray and checked by type.

Each view is what an observer may know of the *committed* state; none exposes a mutable part of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedray.core.contracts.rounds import RoundResult, RoundsState
from fedray.core.state import State


@dataclass(frozen=True)
class RoundResultView:
    """A closed round: when and why it closed, the models before and after, and what was decided
    about its updates (counts, contributing clients and their weights in 2**-16 units); who was
    selected, who declared a missed update (`skipped`), and who delivered nothing the round
    included (`missed`: skipped, too late for the deadline, or refused as a copy)."""

    round: int
    opened_at: int
    closed_at: int
    reason: str
    global_before: bytes
    global_after: bytes
    selected: int
    included: int
    accepted: int
    clipped: int
    rejected: int
    clients: tuple[bytes, ...]
    weights: tuple[int, ...]
    selected_clients: tuple[bytes, ...] = ()
    skipped: tuple[bytes, ...] = ()
    missed: tuple[bytes, ...] = ()

    @staticmethod
    def of(r: RoundResult) -> RoundResultView:
        included = {u.client for u in r.updates}
        return RoundResultView(
            round=r.round,
            opened_at=r.opened_at,
            closed_at=r.closed_at,
            reason=r.reason,
            global_before=r.global_before,
            global_after=r.global_after,
            selected=len(r.selected),
            included=len(r.updates),
            accepted=sum(v.accepted for v in r.verdicts),
            clipped=sum(v.clipped for v in r.verdicts),
            rejected=sum(v.rejected for v in r.verdicts),
            clients=tuple(u.client for u in r.updates),
            weights=tuple(v.weight for v in r.verdicts),
            selected_clients=tuple(r.selected),
            skipped=tuple(r.skipped),
            missed=tuple(k for k in r.selected if k not in included),
        )


@dataclass(frozen=True)
class RoundInfo:
    """The current round (open or the last one closed) at `height`, the training parameters a
    client needs, and the results of the rounds numbered above what the caller asked for."""

    height: int
    round: int
    open: bool
    opened_at: int
    deadline: int
    global_hash: bytes
    selected: tuple[bytes, ...]
    updates: int
    fl_local_epochs: int
    fl_learning_rate: str
    fl_rule: str
    results: tuple[RoundResultView, ...]
    answered: tuple[bytes, ...] = ()  # selected clients with an update, a refusal or a skip
    deadline_ms: int = 0
    privacy: tuple[str, int, int] = ("none", 0, 0)  # dp_mode, dp_clip_norm_fp, dp_noise_milli
    privacy_exhausted: bool = False  # no client can take part within its privacy budget
    privacy_budget: tuple[int, str] = (0, "0")  # dp_epsilon_micro, dp_delta


def round_info(state: State, results_after: int = -1) -> RoundInfo:
    """The open round and the results of rounds numbered above `results_after`."""
    rs: RoundsState = state.section("rounds")
    p = state.params
    return RoundInfo(
        height=state.height,
        round=rs.round,
        open=rs.open,
        opened_at=rs.opened_at,
        deadline=rs.deadline,
        global_hash=rs.global_hash,
        selected=tuple(rs.selected),
        updates=len(rs.updates),
        fl_local_epochs=p.fl_local_epochs,
        fl_learning_rate=p.fl_learning_rate,
        fl_rule=p.fl_rule,
        results=tuple(RoundResultView.of(r) for r in rs.results if r.round > results_after),
        answered=rs.answered() if rs.open else (),
        deadline_ms=rs.deadline_ms,
        privacy=(p.dp_mode, p.dp_clip_norm_fp, p.dp_noise_milli),
        privacy_exhausted=state.section("privacy").exhausted,
        privacy_budget=(p.dp_epsilon_micro, p.dp_delta),
    )


@dataclass(frozen=True)
class AccountInfo:
    """One account as the chain holds it (all zero for an unknown key)."""

    balance: int = 0
    stake: int = 0
    jailed_until: int = 0
    banned: bool = False
    nonce: int = 0
    dp_participations: int = 0  # rounds whose update may have been released (privacy ledger)
    dp_spent_micro: int = 0  # epsilon spent, in millionths

    @property
    def excluded(self) -> bool:
        """Jailed or banned: the account may not take part now."""
        return bool(self.jailed_until) or self.banned


def accounts_info(state: State, keys: list[bytes]) -> dict[bytes, AccountInfo]:
    out = {}
    ledger = state.section("privacy")
    for key in keys:
        a = state.account(key)
        out[key] = (
            AccountInfo()
            if a is None
            else AccountInfo(
                a.balance,
                a.stake,
                a.jailed_until,
                a.banned,
                a.nonce,
                ledger.participations.get(key, 0),
                ledger.spent.get(key, 0),
            )
        )
    return out


@dataclass(frozen=True)
class PenaltyView:
    kind: str
    offender: bytes
    height: int
    burned: int
    jailed_until: int
    banned: bool
    included_at: int


@dataclass(frozen=True)
class EconomyInfo:
    """Tokens minted and burned since genesis, and every penalty applied."""

    minted: int
    burned: int
    penalties: tuple[PenaltyView, ...]


def economy_info(state: State) -> EconomyInfo:
    supply = state.section("economy")
    penalties = tuple(
        PenaltyView(p.kind, p.offender, p.height, p.burned, p.jailed_until, p.banned, p.included_at)
        for p in state.section("penalties").values()
    )
    return EconomyInfo(supply.minted, supply.burned, penalties)


@dataclass(frozen=True)
class ProposalView:
    id: int
    kind: str
    content: tuple[object, ...]
    proposer: bytes
    status: str
    voting_end: int
    execute_height: int
    tally: tuple[int, ...]
    result: str
    deposit: int


@dataclass(frozen=True)
class ReleaseView:
    model_hash: bytes
    terms: str
    height: int
    proposal_id: int


@dataclass(frozen=True)
class GovernanceInfo:
    proposals: tuple[ProposalView, ...]
    releases: tuple[ReleaseView, ...]


def governance_info(state: State) -> GovernanceInfo:
    gs = state.section("governance")
    return GovernanceInfo(
        proposals=tuple(
            ProposalView(
                id=p.id,
                kind=p.kind,
                content=tuple(p.content),
                proposer=p.proposer,
                status=p.status,
                voting_end=p.voting_end,
                execute_height=p.execute_height,
                tally=tuple(p.tally),
                result=p.result,
                deposit=sum(p.deposits.values()),
            )
            for p in gs.proposals.values()
        ),
        releases=tuple(
            ReleaseView(r.model_hash, r.terms, r.height, r.proposal_id) for r in gs.releases
        ),
    )
