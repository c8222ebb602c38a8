"""A run's directory and final results: the directory itself (`make_run_dir`), the final
summary.json (`final_summary`), the final model as safetensors (float32, the model's parameter
names), three PNG plots (matplotlib, Agg backend), and the summary printed at the end. What is
written round by round (metrics.parquet, checkpoints, progress) is `record.RunRecord`'s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from fedray.config import RunConfig, to_yaml
from fedray.core.contracts.economy import account_total
from fedray.core.state import Genesis
from fedray.federation.metrics import client_names
from fedray.federation.plan import Federation
from fedray.federation.record import RunRecord
from fedray.node.views import EconomyInfo


@dataclass
class RunResult:
    run_dir: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any]


def make_run_dir(cfg: RunConfig) -> Path:
    """`<output_dir>/<name>-<time>` (made unique), holding the resolved config.yaml."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.output_dir) / f"{cfg.name}-{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        run_dir, n = Path(f"{base}-{n}"), n + 1
    (run_dir / "chain").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    return run_dir


def economy_summary(economy: EconomyInfo, genesis: Genesis) -> dict[str, Any]:
    """Minted and burned totals, penalties by kind, and the genesis supply they compare with."""
    kinds: dict[str, int] = {}
    for p in economy.penalties:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    return {
        "minted": economy.minted,
        "burned": economy.burned,
        "penalties": kinds,
        "genesis_supply": account_total(genesis.state().accounts.accounts.values()),
    }


def final_summary(
    record: RunRecord,
    *,
    initial_accuracy: float,
    elapsed_seconds: float,
    height: int,
    global_hash: bytes,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """summary.json of a finished run: the run, its end, its lost updates, and `extra` (the
    driver's observations: agreement, dead validators, governance, economy, baseline)."""
    rows = record.rows
    return {
        "name": record.fed.cfg.name,
        "run_id": record.run_id,
        "run_dir": str(record.run_dir),
        "finished": True,
        "rounds": len(rows),
        "final_accuracy": rows[-1]["accuracy"] if rows else initial_accuracy,
        "initial_accuracy": initial_accuracy,
        "elapsed_seconds": elapsed_seconds,
        "height": height,
        "attackers": list(record.fed.attackers()),
        "global_model_hash": global_hash.hex(),
        **lost_updates(rows),
        **extra,
    }


def lost_updates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds that closed on their deadline, and every missed update, from the metrics rows."""
    deadline = [
        {
            "round": r["round"],
            "missed": [c for c in r["missed_clients"] if c not in r["skipped_clients"]],
        }
        for r in rows
        if r["close_reason"] == "deadline"
    ]
    missed = {str(r["round"]): list(r["missed_clients"]) for r in rows if r["missed_clients"]}
    return {
        "deadline_rounds": deadline,
        "missed_updates": missed,
        "clipped_coordinates": int(sum(r["clipped_coordinates"] for r in rows)),
    }


def summary_text(result: RunResult) -> str:
    """What `fedray run` prints at the end."""
    s = result.summary
    lines = [
        f"run directory   {result.run_dir}",
        f"rounds          {s['rounds']}  (height {s['height']}, {s['elapsed_seconds']:.1f} s)",
        f"test accuracy   {s['initial_accuracy']:.3f} -> {s['final_accuracy']:.3f}",
    ]
    if "baseline_accuracy" in s:
        lines.append(f"centralized     {s['baseline_accuracy']:.3f} (same model and epoch budget)")
    missed = sum(len(v) for v in s.get("missed_updates", {}).values())
    deadline = s.get("deadline_rounds", [])
    if missed or deadline:
        parts = [f"{missed} missed updates"] + [
            f"round {d['round']} closed on its deadline"
            + (f" ({client_names(d['missed'])} did not answer)" if d["missed"] else "")
            for d in deadline
        ]
        lines.append("lost updates    " + "; ".join(parts))
    else:
        lines.append("lost updates    none: every round closed with every selected client")
    if s.get("clipped_coordinates"):
        lines.append(f"clipped         {s['clipped_coordinates']} coordinates into |x| < 128")
    lines.append(f"global model    {s['global_model_hash']}")
    lines.append(f"validators      agree on all {s['validators_agree_up_to']} common blocks")
    lines.append(f"verify with     fedray chain verify {result.run_dir} --recompute")
    return "\n".join(lines)


def write_outputs(
    record: RunRecord,
    summary: dict[str, Any],
    final_model: Mapping[str, np.ndarray],
    fed: Federation,
) -> None:
    """The final summary, model and plots (metrics.parquet is already written, round by round)."""
    from safetensors.numpy import save

    from fedray.federation.evaluate import as_float
    from fedray.storage.blobs import atomic_write

    run_dir, rows = record.run_dir, record.rows
    data = save(
        as_float(fed, final_model),
        metadata={"format": "fedray", "global_model_hash": str(summary.get("global_model_hash"))},
    )
    atomic_write(run_dir / "model.safetensors", data)
    record.progress(summary)
    plot_accuracy(run_dir / "accuracy.png", rows, summary)
    plot_round_time(run_dir / "round_time.png", rows)
    if rows and "client_balances" in rows[0]:
        plot_balances(
            run_dir / "balances.png",
            rows,
            set(summary.get("attackers", [])),
            fed.cfg.chain.client_balance,
        )


def plot_accuracy(path: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    rounds = [r["round"] for r in rows]
    ax.plot(rounds, [r["accuracy"] for r in rows], marker="o", label="global model (on chain)")
    if "baseline_accuracy" in summary:
        ax.axhline(
            summary["baseline_accuracy"], color="grey", linestyle="--", label="centralized baseline"
        )
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{summary.get('name', 'run')}: test accuracy per round")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_round_time(path: Path, rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [
        ("train_seconds", "training"),
        ("consensus_seconds", "consensus"),
        ("aggregation_seconds", "aggregation"),
        ("waiting_seconds", "waiting"),
    ]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    rounds = np.array([r["round"] for r in rows])
    bottom = np.zeros(len(rows))
    for key, label in parts:
        values = np.array([r[key] for r in rows])
        ax.bar(rounds, values, bottom=bottom, label=label)
        bottom += values
    ax.set_xlabel("round")
    ax.set_ylabel("seconds")
    ax.set_title("round time split")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


BALANCE_LINES = 200  # above this many clients in a group, its band (min, median, max) is drawn


def plot_balances(
    path: Path, rows: list[dict[str, Any]], attackers: set[int], genesis: int
) -> None:
    """Each client's balance change since genesis after each round; attackers in red. A group of
    more than `BALANCE_LINES` clients is drawn as its min-max band and median: 10,000 lines took
    15 s to draw and show nothing one by one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    rounds = [r["round"] for r in rows]
    series = np.array([r["client_balances"] for r in rows], dtype=np.float64) - genesis
    for bad in (False, True):
        members = [c for c in range(series.shape[1]) if (c in attackers) == bad]
        if not members:
            continue
        color, label = ("tab:red", "attacker") if bad else ("grey", "honest client")
        group = series[:, members]
        if len(members) > BALANCE_LINES:
            ax.fill_between(rounds, group.min(axis=1), group.max(axis=1), color=color, alpha=0.3)
            ax.plot(
                rounds, np.median(group, axis=1), color=color, label=f"{label}s (median, range)"
            )
            continue
        for i in range(group.shape[1]):
            ax.plot(
                rounds,
                group[:, i],
                color=color,
                alpha=0.9 if bad else 0.5,
                linewidth=1.6 if bad else 1.0,
                label=label if i == 0 else None,
                zorder=3 if bad else 2,
            )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("round")
    ax.set_ylabel("balance change since genesis")
    ax.set_title("client balances: rewards minus fees")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
