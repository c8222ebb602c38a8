"""Read-only views of a node's state for observers (the run driver, client pools, the CLI): plain
dicts of Python scalars, bytes and lists, cheap to send over Ray."""

from __future__ import annotations

from typing import Any

from fedray.core.contracts.rounds import RoundResult, RoundsState
from fedray.core.state import State


def result_view(r: RoundResult) -> dict[str, Any]:
    return {
        "round": r.round,
        "opened_at": r.opened_at,
        "closed_at": r.closed_at,
        "reason": r.reason,
        "global_before": r.global_before,
        "global_after": r.global_after,
        "selected": len(r.selected),
        "included": len(r.updates),
        "accepted": sum(v.accepted for v in r.verdicts),
        "clipped": sum(v.clipped for v in r.verdicts),
        "rejected": sum(v.rejected for v in r.verdicts),
        "clients": [u.client for u in r.updates],
        "weights": [v.weight for v in r.verdicts],
    }


def round_info(state: State, results_after: int = -1) -> dict[str, Any]:
    """The open round and the results of rounds numbered above `results_after`."""
    rs: RoundsState = state.section("rounds")
    p = state.params
    return {
        "height": state.height,
        "round": rs.round,
        "open": rs.open,
        "opened_at": rs.opened_at,
        "deadline": rs.deadline,
        "global_hash": rs.global_hash,
        "selected": list(rs.selected),
        "updates": len(rs.updates),
        "fl_local_epochs": p.fl_local_epochs,
        "fl_learning_rate": p.fl_learning_rate,
        "fl_rule": p.fl_rule,
        "results": [result_view(r) for r in rs.results if r.round > results_after],
    }
