"""Governance: proposals backed by deposits, stake-weighted votes, tally and execution, on chain.

Owns the `propose`, `deposit` and `vote` transactions, the `governance` state section (proposals and
approved model releases), the deposit escrow (reported to `economy` for the supply identity) and
the end-of-block step (`process_proposals`, last in `end_block`) that expires, tallies and executes proposals. Which
parameters may change and how a value is checked: `governance_params.py`.

Proposal kinds: `param_change` (one whitelisted parameter, value as text), `admit` (set the client or
validator role of an account, creating it if needed), `ban` (ban an account for good),
`model_release` (record a model hash with the usage terms agreed on). Any kind may be `expedited`:
a shorter voting period (`gov_expedited_voting_period`) and a higher threshold.

Statuses and transitions (h = the height of the block):
    deposit -> voting    a propose/deposit tx brings the deposits to >= gov_min_deposit; voting runs
                         from h to voting_end = h + voting period, power = stake snapshotted then
    deposit -> expired   end of block deposit_end (= submit height + gov_deposit_period); refunded
    voting  -> passed    end of block voting_end; refunded; execute_height = voting_end + gov_timelock
    voting  -> rejected  end of block voting_end, no quorum or not enough yes; refunded
    voting  -> vetoed    end of block voting_end; deposits burned
    passed  -> executed  end of block execute_height (the same block when gov_timelock = 0)
    passed  -> failed    the execution broke a rule at that height (result = the error code); the
                         block stays valid and the state is as if nothing was executed
Tally, in integers with the parameters in force at voting_end; total = staked power in the snapshot,
voted = yes + no + abstain + veto:
    quorum  voted * 10000 >= gov_quorum_bps * total              (at least; else rejected "no_quorum")
    veto    veto * 10000 >= gov_veto_bps * voted                 (at least; vetoed, wins over passing)
    pass    yes * 10000 > threshold_bps * (yes + no + veto)      (strictly more; else "threshold")
threshold_bps is gov_expedited_threshold_bps for expedited proposals, else gov_threshold_bps; when
everyone abstains the proposal is rejected. Expiry, tallies, then executions, each in id order.

Rules: votes only while voting and at heights <= voting_end, one per account, only by accounts in
the snapshot (stake > 0 and not banned at voting start); deposits only in the deposit period.
Jailed and banned senders are refused by the envelope rule before any handler runs.

Deliberately ignored: deposits during voting, changing a vote, delegation, expedited proposals
falling back to a regular vote, cancelling a proposal. Finished proposals drop their snapshot and
individual votes (the blocks keep them) and keep the tally and the result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from fedray.core.context import ExecContext
from fedray.core.contracts import economy
from fedray.core.contracts.accounts import ROLES
from fedray.core.contracts.governance_params import (
    PARAM_CHECK,
    GovernanceError,
    ParamCheck,
    UnknownProposalKindError,
    apply_param_change,
)
from fedray.core.contracts.governance_state import (
    DEPOSIT,
    EXECUTED,
    EXPIRED,
    FAILED,
    PASSED,
    REJECTED,
    VETOED,
    VOTING,
    ModelRelease,
    Proposal,
    gov_section,
    put_proposal,
)
from fedray.core.crypto import PUBLIC_KEY_SIZE
from fedray.core.encoding import DIGEST_SIZE, UINT64_MAX
from fedray.core.journal import Journal
from fedray.core.state import Params
from fedray.core.tx import KindSpec, SignedTx, register_kind
from fedray.errors import (
    FedrayError,
    InsufficientBalanceError,
    IntegerOverflowError,
    PayloadError,
)

PROPOSAL_KINDS = ("param_change", "admit", "ban", "model_release")
OPTIONS = ("yes", "no", "abstain", "veto")
MAX_TERMS = 1024
BPS = 10_000


class UnknownProposalError(GovernanceError):
    """The transaction names a proposal id that does not exist."""

    code = "unknown_proposal"


class DepositClosedError(GovernanceError):
    """A deposit to a proposal that is past its deposit period (voting, finished, or too late)."""

    code = "deposit_closed"


class VotingNotOpenError(GovernanceError):
    """A vote on a proposal still in its deposit period."""

    code = "voting_not_open"


class VotingClosedError(GovernanceError):
    """A vote after the voting period (past voting_end, or already tallied)."""

    code = "voting_closed"


class NoVotingPowerError(GovernanceError):
    """The voter had no stake when voting started (absent from the snapshot)."""

    code = "no_voting_power"


class DoubleVoteError(GovernanceError):
    """The account already voted on this proposal."""

    code = "double_vote"


# --- transactions -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Propose:
    """A new proposal. Fields that do not belong to `proposal_kind` must be empty."""

    proposal_kind: str
    deposit: int
    expedited: bool = False
    param_key: str = ""  # param_change
    param_value: str = ""  # param_change (text, parsed to the parameter's type)
    account: bytes = b""  # admit, ban
    role: str = ""  # admit: client | validator
    model_hash: bytes = b""  # model_release
    terms: str = ""  # model_release

    def validate(self) -> None:
        if self.proposal_kind not in PROPOSAL_KINDS:  # rule: known proposal kind
            raise UnknownProposalKindError(
                f"proposal kind {self.proposal_kind!r} is not one of {PROPOSAL_KINDS}"
            )
        if self.deposit == 0:  # rule: a proposal puts a deposit up
            raise PayloadError("propose.deposit must be positive")
        used = _KIND_FIELDS[self.proposal_kind]
        for name in ("param_key", "param_value", "account", "role", "model_hash", "terms"):
            if name not in used and getattr(self, name):  # rule: one meaning per payload
                raise PayloadError(f"propose.{name} must be empty for {self.proposal_kind}")
        if "account" in used and len(self.account) != PUBLIC_KEY_SIZE:
            raise PayloadError(f"propose.account must be a {PUBLIC_KEY_SIZE}-byte public key")
        if "role" in used and self.role not in ROLES:
            raise PayloadError(f"propose.role must be one of {ROLES}")
        if "model_hash" in used and len(self.model_hash) != DIGEST_SIZE:
            raise PayloadError(f"propose.model_hash must be a {DIGEST_SIZE}-byte digest")
        if "terms" in used and not 0 < len(self.terms) <= MAX_TERMS:
            raise PayloadError(f"propose.terms must have 1..{MAX_TERMS} characters")

    def content(self) -> tuple[Any, ...]:
        return (
            self.param_key,
            self.param_value,
            self.account,
            self.role,
            self.model_hash,
            self.terms,
        )


_KIND_FIELDS = {
    "param_change": ("param_key", "param_value"),
    "admit": ("account", "role"),
    "ban": ("account",),
    "model_release": ("model_hash", "terms"),
}


@dataclass(frozen=True)
class Deposit:
    proposal_id: int
    amount: int

    def validate(self) -> None:
        if self.amount == 0:
            raise PayloadError("deposit.amount must be positive")


@dataclass(frozen=True)
class Vote:
    proposal_id: int
    option: str

    def validate(self) -> None:
        if self.option not in OPTIONS:
            raise PayloadError(f"vote.option must be one of {OPTIONS}, got {self.option!r}")


def _checker(ctx: ExecContext) -> ParamCheck | None:
    checker: ParamCheck | None = ctx.env.precompiles.get(PARAM_CHECK)
    return checker


# --- handlers ---------------------------------------------------------------------------------
def _take_deposit(journal: Journal, who: bytes, amount: int) -> None:
    acct = journal.account_or_empty(who)
    if acct.balance < amount:  # rule: the deposit is covered by the balance
        raise InsufficientBalanceError(f"balance {acct.balance} < deposit {amount}")
    journal.update_account(who, balance=acct.balance - amount)


def _maybe_start_voting(journal: Journal, p: Proposal, ctx: ExecContext) -> Proposal:
    params = journal.params
    if p.total_deposit < params.gov_min_deposit:  # rule: voting starts at the minimum deposit
        return p
    period = params.gov_expedited_voting_period if p.expedited else params.gov_voting_period
    snapshot = {k: a.stake for k, a in journal.all_accounts().items() if a.stake and not a.banned}
    return replace(
        p,
        status=VOTING,
        voting_start=ctx.height,
        voting_end=ctx.height + period,
        snapshot=MappingProxyType(snapshot),
    )


def apply_propose(journal: Journal, stx: SignedTx, p: Propose, ctx: ExecContext) -> None:
    if p.proposal_kind == "param_change":  # rule: whitelisted key, valid value (at submission)
        apply_param_change(journal.params, p.param_key, p.param_value, _checker(ctx))
    _take_deposit(journal, stx.tx.sender, p.deposit)
    gs = gov_section(journal)
    proposal = Proposal(
        gs.next_id,
        p.proposal_kind,
        p.content(),
        stx.tx.sender,
        p.expedited,
        ctx.height,
        ctx.height + journal.params.gov_deposit_period,
        MappingProxyType({stx.tx.sender: p.deposit}),
    )
    journal.set_section("governance", replace(gs, next_id=gs.next_id + 1))
    put_proposal(journal, _maybe_start_voting(journal, proposal, ctx))


def _proposal(journal: Journal, proposal_id: int) -> Proposal:
    proposal = gov_section(journal).proposals.get(proposal_id)
    if proposal is None:  # rule: the proposal exists
        raise UnknownProposalError(f"no proposal {proposal_id}")
    return proposal


def apply_deposit(journal: Journal, stx: SignedTx, p: Deposit, ctx: ExecContext) -> None:
    proposal = _proposal(journal, p.proposal_id)
    if proposal.status != DEPOSIT or ctx.height > proposal.deposit_end:  # rule: deposit period
        raise DepositClosedError(
            f"proposal {p.proposal_id} is {proposal.status}, deposit period ended at "
            f"{proposal.deposit_end}"
        )
    held = proposal.deposits.get(stx.tx.sender, 0)
    if proposal.total_deposit + p.amount > UINT64_MAX:  # rule: no integer overflow
        raise IntegerOverflowError("total deposit would exceed 2**64-1")
    _take_deposit(journal, stx.tx.sender, p.amount)
    deposits = MappingProxyType({**proposal.deposits, stx.tx.sender: held + p.amount})
    put_proposal(journal, _maybe_start_voting(journal, replace(proposal, deposits=deposits), ctx))


def apply_vote(journal: Journal, stx: SignedTx, p: Vote, ctx: ExecContext) -> None:
    proposal = _proposal(journal, p.proposal_id)
    voter = stx.tx.sender
    if proposal.status == DEPOSIT:  # rule: voting has started
        raise VotingNotOpenError(f"proposal {p.proposal_id} is still in its deposit period")
    if proposal.status != VOTING or ctx.height > proposal.voting_end:  # rule: voting period
        raise VotingClosedError(f"voting on proposal {p.proposal_id} ended")
    if voter not in proposal.snapshot:  # rule: only accounts staked at voting start
        raise NoVotingPowerError(f"{voter.hex()[:16]} had no stake when voting started")
    if voter in proposal.votes:  # rule: one vote per account
        raise DoubleVoteError(f"{voter.hex()[:16]} already voted on proposal {p.proposal_id}")
    index = OPTIONS.index(p.option)
    tally = list(proposal.tally)
    tally[index] += proposal.snapshot[voter]
    votes = MappingProxyType({**proposal.votes, voter: p.option})
    put_proposal(
        journal, replace(proposal, votes=votes, tally=(tally[0], tally[1], tally[2], tally[3]))
    )


PROPOSE = register_kind(KindSpec("propose", Propose, 50_000, apply_propose))
DEPOSIT_KIND = register_kind(KindSpec("deposit", Deposit, 10_000, apply_deposit))
VOTE = register_kind(KindSpec("vote", Vote, 5_000, apply_vote))


# --- end of block -----------------------------------------------------------------------------
def _refund(journal: Journal, p: Proposal) -> None:
    for who in sorted(p.deposits):
        acct = journal.account_or_empty(who)
        journal.update_account(who, balance=acct.balance + p.deposits[who])


def _finish(journal: Journal, p: Proposal, status: str, result: str = "") -> Proposal:
    """Leave voting or deposit: drop the snapshot and the individual votes (blocks keep them)."""
    done = replace(
        p, status=status, result=result, snapshot=MappingProxyType({}), votes=MappingProxyType({})
    )
    put_proposal(journal, done)
    return done


def outcome(p: Proposal, params: Params) -> tuple[str, str]:
    """(status, reason) of a proposal whose voting ended, by the tally rules above."""
    yes, no, abstain, veto = p.tally
    voted = yes + no + abstain + veto
    total = sum(p.snapshot.values())
    if not voted or voted * BPS < params.gov_quorum_bps * total:  # rule: quorum of the power
        return REJECTED, "no_quorum"
    if veto * BPS >= params.gov_veto_bps * voted:  # rule: veto share of the votes cast
        return VETOED, "veto"
    threshold = params.gov_expedited_threshold_bps if p.expedited else params.gov_threshold_bps
    if yes * BPS > threshold * (yes + no + veto):  # rule: yes share of non-abstaining votes
        return PASSED, ""
    return REJECTED, "threshold"


def tally(journal: Journal, p: Proposal) -> None:
    status, reason = outcome(p, journal.params)
    if status == VETOED:  # rule: a vetoed proposal's deposits are burned
        economy.burn_amount(journal, p.total_deposit)
        _finish(journal, p, VETOED, reason)
        return
    _refund(journal, p)  # rule: other outcomes refund the deposits
    done = _finish(journal, p, status, reason)
    if status == PASSED:
        put_proposal(
            journal, replace(done, execute_height=p.voting_end + journal.params.gov_timelock)
        )


def _execute_action(journal: Journal, p: Proposal, ctx: ExecContext) -> None:
    key, value, account, role, model_hash, terms = p.content
    if p.kind == "param_change":
        journal.set_params(apply_param_change(journal.params, key, value, _checker(ctx)))
    elif p.kind == "admit":
        journal.update_account(
            account, **{"is_client" if role == "client" else "is_validator": True}
        )
    elif p.kind == "ban":
        journal.update_account(account, banned=True)
    else:
        gs = gov_section(journal)
        release = ModelRelease(model_hash, terms, ctx.height, p.id)
        journal.set_section("governance", replace(gs, releases=gs.releases + (release,)))
    if not journal.next_validator_set().members:  # rule: an execution keeps a validator
        raise GovernanceError("the execution would leave the validator set empty")


def execute(journal: Journal, p: Proposal, ctx: ExecContext) -> None:
    """Run a passed proposal; a broken rule reverts it and records `failed` with the error code."""
    savepoint = journal.savepoint()
    try:
        _execute_action(journal, p, ctx)
    except FedrayError as exc:
        journal.revert(savepoint)
        put_proposal(journal, replace(p, status=FAILED, result=exc.code))
        return
    put_proposal(journal, replace(p, status=EXECUTED))


def _due(journal: Journal, status: str, height_of: str, height: int) -> list[Proposal]:
    """Proposals in `status` whose `height_of` field is at or below `height`, by id."""
    proposals = gov_section(journal).proposals
    in_order = (proposals[i] for i in sorted(proposals))
    return [p for p in in_order if p.status == status and getattr(p, height_of) <= height]


def process_proposals(journal: Journal, ctx: ExecContext) -> None:
    """The end-of-block step: expiry, tallies, then executions, each in id order."""
    for p in _due(journal, DEPOSIT, "deposit_end", ctx.height):  # rule: deposit period over
        _refund(journal, p)
        _finish(journal, p, EXPIRED)
    for p in _due(journal, VOTING, "voting_end", ctx.height):  # rule: voting over -> tally
        tally(journal, p)
    for p in _due(journal, PASSED, "execute_height", ctx.height):  # rule: timelock over
        execute(journal, p, ctx)
