"""The end of a block: every contract step that runs after the block's transactions, in order.

One function read top to bottom, like consensus-specs' `process_epoch`. The order is part of the
protocol (every state root depends on it): the validator steps read the last commit; a closed round's
result is recorded before its clients are paid and judged, and the next round draws its clients after
that, so a client jailed for this round is not drawn for the next; governance runs last, so what it
executes (parameters, roles, bans) is seen by the next block's steps and by the validator set that
signs it; unbonding stake is released after every penalty of the block has had its chance at it.

Deliberately ignored: anything a single contract decides on its own (see each contract).
"""

from __future__ import annotations

from fedray.core.context import ExecContext
from fedray.core.contracts import governance, incentives, rounds, slashing, unbonding
from fedray.core.journal import Journal


def process_end_block(journal: Journal, ctx: ExecContext) -> None:
    incentives.reward_validators(journal, ctx)  # signers of the last commit share the block reward
    slashing.track_liveness(journal, ctx)  # signing windows of the last set; downtime penalties
    closed = rounds.close_due_round(journal, ctx)  # the open round closes on quota or deadline
    if closed is not None:
        incentives.reward_clients(journal, closed, ctx)  # its contributing clients are paid
        slashing.judge_round(journal, closed, ctx)  # free riding and repeated flags are penalized
    rounds.open_round_if_idle(journal, ctx)  # the next round draws its clients from this block
    governance.process_proposals(journal, ctx)  # expiries, tallies, then executions, by id
    unbonding.release_due(journal, ctx)  # unstaked tokens whose period ends here reach balances
