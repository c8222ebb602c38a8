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


def accounts_info(state: State, keys: list[bytes]) -> dict[bytes, dict[str, Any]]:
    out = {}
    for key in keys:
        a = state.account(key)
        out[key] = {
            "balance": a.balance if a else 0,
            "stake": a.stake if a else 0,
            "jailed_until": a.jailed_until if a else 0,
            "banned": a.banned if a else False,
            "nonce": a.nonce if a else 0,
        }
    return out


def economy_info(state: State) -> dict[str, Any]:
    supply = state.section("economy")
    penalties = [
        {
            "kind": p.kind,
            "offender": p.offender,
            "height": p.height,
            "burned": p.burned,
            "jailed_until": p.jailed_until,
            "banned": p.banned,
            "included_at": p.included_at,
        }
        for p in state.section("penalties").values()
    ]
    return {"minted": supply.minted, "burned": supply.burned, "penalties": penalties}


def governance_info(state: State) -> dict[str, Any]:
    gs = state.section("governance")
    return {
        "proposals": [
            {
                "id": p.id,
                "kind": p.kind,
                "content": list(p.content),
                "proposer": p.proposer,
                "status": p.status,
                "voting_end": p.voting_end,
                "execute_height": p.execute_height,
                "tally": list(p.tally),
                "result": p.result,
                "deposit": sum(p.deposits.values()),
            }
            for p in gs.proposals.values()
        ],
        "releases": [
            {
                "model_hash": r.model_hash,
                "terms": r.terms,
                "height": r.height,
                "proposal_id": r.proposal_id,
            }
            for r in gs.releases
        ],
        "params": dict(state.params.to_canonical()),
    }
