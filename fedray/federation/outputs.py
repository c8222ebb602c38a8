"""A run's directory and results: the directory itself (`make_run_dir`), metrics.parquet (pyarrow),
summary.json, the final model as safetensors (float32, the model's parameter names), three PNG plots
(matplotlib, Agg backend), and the summary printed at the end."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fedray.config import RunConfig, to_yaml
from fedray.core.contracts.economy import account_total
from fedray.core.state import Genesis
from fedray.federation.plan import Federation
from fedray.node.export import jsonable
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
    lines.append(f"validators      agree on all {s['validators_agree_up_to']} common blocks")
    lines.append(f"verify with     fedray chain verify {result.run_dir} --recompute")
    return "\n".join(lines)


def write_outputs(
    run_dir: Path,
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    final_model: Mapping[str, np.ndarray],
    fed: Federation,
) -> None:
    from safetensors.numpy import save_file

    from fedray.federation.evaluate import Evaluator

    write_metrics(run_dir, rows, summary)
    save_file(
        Evaluator(fed).as_float(final_model),
        str(run_dir / "model.safetensors"),
        metadata={"format": "fedray", "global_model_hash": str(summary.get("global_model_hash"))},
    )
    plot_accuracy(run_dir / "accuracy.png", rows, summary)
    plot_round_time(run_dir / "round_time.png", rows)
    if rows and "client_balances" in rows[0]:
        plot_balances(
            run_dir / "balances.png",
            rows,
            set(summary.get("attackers", [])),
            fed.cfg.chain.client_balance,
        )


def write_metrics(run_dir: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """metrics.parquet (one row per round) and summary.json: what a run's tables are read from."""
    pq.write_table(pa.Table.from_pylist(rows), run_dir / "metrics.parquet")
    (run_dir / "summary.json").write_text(
        json.dumps(jsonable(summary), indent=2, sort_keys=True) + "\n"
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


def plot_balances(
    path: Path, rows: list[dict[str, Any]], attackers: set[int], genesis: int
) -> None:
    """Each client's balance change since genesis after each round; attackers in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    rounds = [r["round"] for r in rows]
    series = np.array([r["client_balances"] for r in rows], dtype=np.float64) - genesis
    labelled: set[bool] = set()
    for client in range(series.shape[1]):
        bad = client in attackers
        label = None if bad in labelled else ("attacker" if bad else "honest client")
        labelled.add(bad)
        ax.plot(
            rounds,
            series[:, client],
            color="tab:red" if bad else "grey",
            alpha=0.9 if bad else 0.5,
            linewidth=1.6 if bad else 1.0,
            label=label,
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
