"""Bounds a genesis must respect so that time and height arithmetic stays inside uint64.

Block time grows by at most `max_block_time_step_ms` per block (the header rule), so it stays at
most genesis_time + height x step; heights grow by one per block, and every period (jail, deadline,
unbonding, governance) is added to a height. With the clock below 2**53 ms and steps and periods
below 2**32, no reachable height brings any of these sums near 2**64. Governance keeps the periods
it may change inside the same bound (`governance_params.INT_GUARDS`).
"""

from __future__ import annotations

from typing import Any

from fedray.errors import FedrayError

MAX_GENESIS_TIME_MS = 2**53
MAX_PERIOD = 2**32 - 1
PERIODS = (  # parameters counted in blocks
    "unbonding_blocks",
    "fl_round_deadline",
    "downtime_window",
    "downtime_jail_blocks",
    "flagged_jail_blocks",
    "gov_deposit_period",
    "gov_voting_period",
    "gov_expedited_voting_period",
    "gov_timelock",
)


def check_genesis_bounds(genesis_time: int, params: Any) -> None:
    """Raise `FedrayError` unless the genesis clock, time step and periods of `params` (a
    `state.Params`, which imports this module) are in bounds."""
    if not 0 <= genesis_time <= MAX_GENESIS_TIME_MS:
        raise FedrayError(f"genesis_time {genesis_time} is outside 0..2**53")
    if not 1 <= params.max_block_time_step_ms <= MAX_PERIOD:  # 0 would halt the chain
        raise FedrayError("max_block_time_step_ms must be in 1..2**32-1")
    for name in PERIODS:
        if not 0 <= getattr(params, name) <= MAX_PERIOD:
            raise FedrayError(f"{name} must be in 0..2**32-1 blocks")
