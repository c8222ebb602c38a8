"""Federated-learning rounds on the chain: opening, client selection, update transactions, closing.

Lifecycle, all inside `apply_block` so every validator agrees:
- A round opens in the end-of-block step of block h when none is open (and `fl_max_rounds` allows):
  it records the global model hash and `fl_clients_per_round` clients drawn from h's randomness, its
  proposer's VRF output (`beacon.py`: known to nobody before h is proposed, reproducible by everyone
  after, and not steerable through h's time or content).
- Each selected client answers once: an `update` transaction (round, payload hash, sample count,
  size) whose payload travels off-chain and is pinned by every validator, or a `skip` transaction
  declaring that it will not deliver this round (its training failed, its pool crashed): a missed
  update, recorded, neither paid nor penalized.
- The round closes at the end of the block where every selected client has answered ("quota"), so
  how long training takes never changes what the round aggregates. The deadline only cuts clients
  that never answer (dead, or lagging past any reason): it is reached once the block is at least
  `fl_round_deadline` blocks *and* `fl_round_timeout_ms` of BFT time (block header time) after the
  opening block ("deadline"). The aggregation precompile turns the pinned payloads into the new
  global model hash and one verdict per update, which the state records. The next round opens in
  the same block.

Deliberately ignored here: rewards and penalties (incentives/slashing contracts read `results`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fedray.core.context import ExecContext
from fedray.core.contracts.economy import penalize
from fedray.core.contracts.privacy import charge_round, mark_exhausted, noise_z_bps, norm_bound
from fedray.core.contracts.rounds_state import ROUNDS as ROUNDS  # re-exported: the section
from fedray.core.contracts.rounds_state import RoundResult as RoundResult
from fedray.core.contracts.rounds_state import RoundsState as RoundsState
from fedray.core.contracts.rounds_state import UpdateRecord as UpdateRecord
from fedray.core.contracts.rounds_state import genesis_rounds as genesis_rounds
from fedray.core.contracts.selection import eligible_clients, select_clients, selection_seed
from fedray.core.encoding import DIGEST_SIZE, hash_value
from fedray.core.journal import Journal
from fedray.core.precompiles import (
    AGGREGATION,
    AggregationOutcome,
    AggregationPrecompile,
    AggregationRequest,
    FlagParams,
)
from fedray.core.tx import KindSpec, SignedTx, register_kind
from fedray.errors import BlockError, PayloadError, TxError

UPDATE_BASE_GAS = 10_000


class RoundError(TxError):
    """An update transaction does not fit the open round."""

    code = "round"


class RoundClosedError(RoundError):
    """No round is open, the update names another round, or the deadline has passed."""

    code = "round_closed"


class NotSelectedError(RoundError):
    """The sender is not among the round's selected clients."""

    code = "not_selected"


class DuplicateUpdateError(RoundError):
    """The sender already submitted an update this round."""

    code = "duplicate_update"


class UpdateSizeError(RoundError):
    """The declared payload size differs from the model's, or the sample count is out of range."""

    code = "update_size"


# --- the update transaction -------------------------------------------------------------------
@dataclass(frozen=True)
class Update:
    round: int
    payload_hash: bytes
    n_samples: int
    size: int

    def validate(self) -> None:
        if len(self.payload_hash) != DIGEST_SIZE:
            raise PayloadError(f"update.payload_hash must be a {DIGEST_SIZE}-byte digest")
        if self.n_samples == 0:
            raise PayloadError("update.n_samples must be positive")


def _check_turn(rs: RoundsState, sender: bytes, round_: int, ctx: ExecContext) -> None:
    """The rules an update and a skip share: an open round, its deadline, selection, one turn."""
    if not rs.open or round_ != rs.round:  # rule: the named round is open
        raise RoundClosedError(
            f"round {round_} is not open (open: {rs.round if rs.open else None})"
        )
    if ctx.height > rs.deadline and ctx.time > rs.deadline_ms:  # rule: before the deadline
        raise RoundClosedError(
            f"round {round_} closed at height {rs.deadline} and time {rs.deadline_ms}"
        )
    if sender not in rs.selected:  # rule: only selected clients
        raise NotSelectedError(f"client {sender.hex()[:16]} is not selected for round {round_}")
    if sender in rs.answered():  # rule: one update (or skip) per client per round
        raise DuplicateUpdateError(f"client {sender.hex()[:16]} already submitted round {round_}")


def apply_update(journal: Journal, stx: SignedTx, p: Update, ctx: ExecContext) -> None:
    rs: RoundsState = journal.section("rounds")
    sender = stx.tx.sender
    _check_turn(rs, sender, p.round, ctx)
    if p.payload_hash == rs.zero_hash:
        pass  # the zero update is free riding, not a copy: its flags decide (slashing contract)
    elif p.payload_hash in rs.used_payloads:
        # rule: a payload counts once; replaying one from an earlier round is refused and slashed
        # (the transaction is the proof: the client signed a payload hash already used).
        _refuse_copy(
            journal, sender, p.payload_hash, p.round, "replayed_payload", stx.hash, ctx.height
        )
        return
    else:
        # rule: payloads are private until their round closes, so clients submitting the same
        # payload in one round colluded: all of them are refused and slashed.
        copied = [u for u in rs.updates if u.payload_hash == p.payload_hash]
        if copied or any(h == p.payload_hash for _, h in rs.excluded):
            _refuse_copy(
                journal, sender, p.payload_hash, p.round, "copied_payload", stx.hash, ctx.height
            )
            for original in copied:
                _refuse_copy(
                    journal,
                    original.client,
                    p.payload_hash,
                    p.round,
                    "copied_payload",
                    original.tx_hash,
                    ctx.height,
                )
            return
    if p.size != rs.model_nbytes:  # rule: the payload is a whole model delta
        raise UpdateSizeError(f"update size {p.size} differs from the model's {rs.model_nbytes}")
    if p.n_samples > journal.params.fl_max_samples:  # rule: plausible sample count
        raise UpdateSizeError(f"n_samples {p.n_samples} exceeds {journal.params.fl_max_samples}")
    record = UpdateRecord(sender, p.payload_hash, p.n_samples, p.size, stx.hash)
    journal.set_section("rounds", replace(rs, updates=rs.updates + (record,)))


def _refuse_copy(
    journal: Journal,
    client: bytes,
    payload_hash: bytes,
    round_: int,
    kind: str,
    proof: bytes,
    height: int,
) -> None:
    """Slash `client` once for this round and drop any update it has in the round."""
    penalize(
        journal,
        key=hash_value([kind, client, round_]),
        kind=kind,
        offender=client,
        height=height,
        proof_digest=proof,
        included_at=height,
        bps=journal.params.slash_copy_bps,
    )
    rs: RoundsState = journal.section("rounds")
    journal.set_section(
        "rounds",
        replace(
            rs,
            updates=tuple(u for u in rs.updates if u.client != client),
            excluded=rs.excluded + ((client, payload_hash),),
        ),
    )


# Updates pay no fee: only selected clients may send one per round, so the protocol bounds their
# number, and an honest client's balance then never falls because it took part.
UPDATE = register_kind(KindSpec("update", Update, UPDATE_BASE_GAS, apply_update, fee_exempt=True))


# --- the skip transaction ---------------------------------------------------------------------
@dataclass(frozen=True)
class Skip:
    """A selected client declares that it delivers no update in `round` (a missed update)."""

    round: int


def apply_skip(journal: Journal, stx: SignedTx, p: Skip, ctx: ExecContext) -> None:
    rs: RoundsState = journal.section("rounds")
    _check_turn(rs, stx.tx.sender, p.round, ctx)
    journal.set_section("rounds", replace(rs, skipped=rs.skipped + (stx.tx.sender,)))


# Fee exempt for the reason updates are: one answer per selected client per round.
SKIP = register_kind(KindSpec("skip", Skip, UPDATE_BASE_GAS, apply_skip, fee_exempt=True))


# --- opening and closing ----------------------------------------------------------------------
def open_round(journal: Journal, ctx: ExecContext) -> None:
    rs: RoundsState = journal.section("rounds")
    params = journal.params
    if params.fl_max_rounds and rs.round >= params.fl_max_rounds:
        return
    candidates = eligible_clients(journal)
    # rule: when clients remain but none within its privacy budget, the federation's is spent
    mark_exhausted(journal, not candidates and bool(eligible_clients(journal, budget=False)))
    if not candidates or not rs.global_hash:
        return
    k = min(params.fl_clients_per_round, len(candidates))
    seed = selection_seed(ctx.randomness, rs.round)
    journal.set_section(
        "rounds",
        replace(
            rs,
            open=True,
            opened_at=ctx.height,
            deadline=ctx.height + params.fl_round_deadline,
            deadline_ms=ctx.time + params.fl_round_timeout_ms,
            selected=select_clients(candidates, k, seed),
            updates=(),
            excluded=(),
            skipped=(),
        ),
    )


def close_round(journal: Journal, ctx: ExecContext, reason: str) -> RoundResult:
    """Aggregate the open round's updates and record its result (returned for rewards and
    penalties, which `end_block` runs next)."""
    rs: RoundsState = journal.section("rounds")
    params = journal.params
    updates = tuple(sorted(rs.updates, key=lambda u: u.tx_hash))
    k = len(rs.selected)
    if updates:
        precompile: AggregationPrecompile | None = ctx.env.precompiles.get(AGGREGATION)
        if precompile is None:
            raise BlockError("closing a round needs the aggregation precompile")
        request = AggregationRequest(
            rs.round,
            params.fl_rule,
            params.fl_rule_config,
            rs.global_hash,
            rs.strategy_state_hash,
            tuple((u.tx_hash, u.payload_hash, u.n_samples) for u in updates),
            FlagParams(
                params.flag_cos_low_bps,
                params.flag_cos_high_bps,
                params.flag_norm_ratio_bps,
                noise_z_bps(params, rs.model_nbytes, k),  # moves with the DP noise
                params.flag_copy_bps,
                params.flag_opposed_cos_bps,
                params.flag_opposed_norm_bps,
            ),
            norm_bound(params, rs.model_nbytes, k),
        )
        outcome = precompile.aggregate(request)
        if [v.key for v in outcome.verdicts] != [u.tx_hash for u in updates]:
            raise BlockError("aggregation outcome does not match the round's updates")
    else:
        outcome = AggregationOutcome(rs.global_hash, rs.strategy_state_hash, ())
    result = RoundResult(
        rs.round,
        rs.opened_at,
        ctx.height,
        reason,
        rs.global_hash,
        outcome.global_hash,
        rs.selected,
        updates,
        outcome.verdicts,
        tuple(sorted(rs.skipped)),
    )
    charge_round(journal, rs.round, rs.selected, rs.skipped)  # rule: each release costs epsilon
    journal.set_section(
        "rounds",
        replace(
            rs,
            global_hash=outcome.global_hash,
            strategy_state_hash=outcome.state_hash,
            round=rs.round + 1,
            open=False,
            selected=(),
            updates=(),
            excluded=(),
            skipped=(),
            results=rs.results + (result,),
            used_payloads=rs.used_payloads | {u.payload_hash for u in updates} - {rs.zero_hash},
        ),
    )
    return result


def close_due_round(journal: Journal, ctx: ExecContext) -> RoundResult | None:
    """Close the open round once every selected client answered, or at its deadline; its result,
    or None."""
    rs: RoundsState = journal.section("rounds")
    if not rs.open:
        return None
    if rs.submitted() >= len(rs.selected):
        return close_round(journal, ctx, "quota")
    if rs.past_deadline(ctx.height, ctx.time):
        return close_round(journal, ctx, "deadline")
    return None


def open_round_if_idle(journal: Journal, ctx: ExecContext) -> None:
    """Open the next round when none is open (the one closed in this block included)."""
    rs: RoundsState = journal.section("rounds")
    if not rs.open:
        open_round(journal, ctx)
