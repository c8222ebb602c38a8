"""Readable tables of a chain's state for `fedray chain show --accounts | --proposals | --evidence`.

The state is replayed from the node's block store (with its recorded aggregation outcomes), so the
tables show what the chain decided, not what a driver remembers. Keys print as their hex prefix
unless the caller passes names (the CLI does for run directories: `client-3`, `validator-0`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedray.core.state import State
from fedray.node.app import make_block_env
from fedray.node.replay import load_state
from fedray.storage.blockstore import BlockStore


def replay(chain_dir: Path) -> State:
    with BlockStore.reading(chain_dir) as store:
        return load_state(store, make_block_env(chain_dir, recompute=False, store=store))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def name(labels: dict[bytes, str], key: bytes) -> str:
    return labels.get(key, key.hex()[:16])


def _epsilon(micro: int) -> str:
    return f"{micro / 1e6:.3f}"


def accounts_table(state: State, labels: dict[bytes, str]) -> str:
    """Every account; with a privacy budget on chain, each client's spent and remaining epsilon
    and its participations (`contracts/privacy.py`)."""
    params = state.params
    ledger = state.section("privacy")
    budget = params.dp_epsilon_micro > 0
    rows = []
    for key, a in sorted(state.accounts.accounts.items(), key=lambda kv: (-kv[1].stake, kv[0])):
        roles = "+".join(
            r for r, on in (("validator", a.is_validator), ("client", a.is_client)) if on
        )
        status = (
            "banned" if a.banned else (f"jailed until {a.jailed_until}" if a.jailed_until else "")
        )
        row = [name(labels, key), a.balance, a.stake, a.nonce, roles or "-", status]
        if budget:
            spent = ledger.spent.get(key, 0)
            left = max(0, params.dp_epsilon_micro - spent)
            row += (
                [_epsilon(spent), _epsilon(left), ledger.participations.get(key, 0)]
                if a.is_client
                else ["-", "-", "-"]
            )
        rows.append(row)
    supply = state.section("economy")
    footer = f"\nminted {supply.minted}, burned {supply.burned}, {len(rows)} accounts"
    header = ["account", "balance", "stake", "nonce", "roles", "status"]
    if budget:
        header += ["eps spent", "eps left", "rounds"]
        footer += (
            f"\nprivacy: {params.dp_mode} DP, budget epsilon {_epsilon(params.dp_epsilon_micro)}"
            f" at delta {params.dp_delta}"
            + (" (spent: no client can take part any more)" if ledger.exhausted else "")
        )
    return _table(header, rows) + footer


def proposals_table(state: State, labels: dict[bytes, str]) -> str:
    gs = state.section("governance")
    rows = []
    for p in sorted(gs.proposals.values(), key=lambda p: p.id):
        key, value, account, role, model, terms = p.content
        what = {
            "param_change": f"{key} = {value}",
            "admit": f"{name(labels, account)} as {role}",
            "ban": name(labels, account),
            "model_release": f"{model.hex()[:16]} ({terms[:30]})",
        }.get(p.kind, "")
        yes, no, abstain, veto = p.tally
        rows.append(
            [
                p.id,
                p.kind + (" (expedited)" if p.expedited else ""),
                what,
                p.status,
                p.voting_end or "-",
                f"{yes}/{no}/{abstain}/{veto}",
                p.result or "-",
                p.execute_height or "-",
            ]
        )
    releases = "".join(
        f"\nrelease {r.model_hash.hex()} at height {r.height} (proposal {r.proposal_id}): {r.terms}"
        for r in gs.releases
    )
    return (
        _table(
            [
                "id",
                "kind",
                "change",
                "status",
                "voting end",
                "yes/no/abstain/veto",
                "result",
                "executed at",
            ],
            rows,
        )
        + releases
    )


def evidence_table(state: State, labels: dict[bytes, str]) -> str:
    penalties = sorted(state.section("penalties").values(), key=lambda p: (p.included_at, p.kind))
    rows = [
        [
            p.included_at,
            p.kind,
            name(labels, p.offender),
            p.height,
            p.burned,
            "banned" if p.banned else (p.jailed_until or "-"),
            p.proof_digest.hex()[:16],
        ]
        for p in penalties
    ]
    consensus = state.section("evidence")
    lines = [_table(["block", "kind", "offender", "at", "burned", "jailed until", "proof"], rows)]
    for record in consensus.values():
        lines.append(
            f"consensus evidence {record.kind} by {name(labels, record.offender)} at "
            f"height {record.height}, included at {record.included_at}"
        )
    return "\n".join(lines)
