"""A run's directory and final results: the directory itself (`make_run_dir`), the final
summary.json (`final_summary`), the final model as safetensors (float32, the model's parameter
names), three PNG plots (`plots`), and the summary printed at the end. What is
written round by round (metrics.parquet, checkpoints, progress) is `record.RunRecord`'s."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from fedray.config import RunConfig, to_yaml, with_model_defaults
from fedray.core.contracts.economy import account_total
from fedray.core.state import Genesis
from fedray.federation import plots
from fedray.federation.live import flat_config
from fedray.federation.metrics import client_names
from fedray.federation.plan import Federation
from fedray.federation.record import RunRecord
from fedray.node.views import AccountInfo, EconomyInfo, RoundInfo


@dataclass
class RunResult:
    run_dir: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any]


def make_run_dir(cfg: RunConfig) -> Path:
    """`<output_dir>/<label>-<time>` (made unique, `run_label`), holding the resolved config.yaml."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.output_dir) / f"{run_label(cfg)}-{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        run_dir, n = Path(f"{base}-{n}"), n + 1
    (run_dir / "chain").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    return run_dir


# a changed `<group>.<key>` stands for its group, shown as the pick `<group>=<value>`
GROUP_KEYS = {"data": "name", "strategy": "name", "attack": "name", "privacy": "mode"}
UNNAMED = ("name", "output_dir", "runtime.", "metrics.")  # where a run goes or how it is shown
MAX_LABEL = 120
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.,=+-]")


def run_label(cfg: RunConfig) -> str:
    """What a run directory is called: its `name` when one is given (a preset's, `name=...`),
    else what differs from the default run, `strategy=krum,attack=sign_flip` (a changed group
    by its pick, other keys as `key=value`, in the config's order; training defaults of the
    run's own model count as defaults), or `default` when nothing does."""
    if cfg.name != RunConfig.name:
        return cfg.name
    base = RunConfig()
    own_training = with_model_defaults(dataclasses.replace(base, model=cfg.model)).training
    ours = flat_config(cfg)
    theirs = flat_config(dataclasses.replace(base, training=own_training))
    picked = {g for g, k in GROUP_KEYS.items() if ours[f"{g}.{k}"] != theirs[f"{g}.{k}"]}
    parts = []
    for key, value in ours.items():
        group = key.split(".")[0]
        if key.startswith(UNNAMED) or theirs.get(key) == value:
            continue
        if group == "governance":
            parts.append(f"governance={len(cfg.governance)}")
        elif group in picked:
            if key == f"{group}.{GROUP_KEYS[group]}":
                parts.append(f"{group}={value}")
        else:
            parts.append(f"{key}={value}")
    label = _LABEL_UNSAFE.sub("_", ",".join(dict.fromkeys(parts))) or RunConfig.name
    if len(label) > MAX_LABEL:
        cut = label[:MAX_LABEL].rsplit(",", 1)[0]
        label = f"{cut},+{len(parts) - cut.count(',') - 1}"
    return label


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


def privacy_summary(
    info: RoundInfo, accounts: dict[bytes, AccountInfo], budget_spent_after: int | None
) -> dict[str, Any]:
    """What the run spent of its privacy budget, from the chain's parameters at its end and its
    ledger: `epsilon_spent` is the largest over clients (null without DP: unbounded),
    `epsilon_target` the per-client budget (null: none)."""
    mode, clip_fp, noise_milli = info.privacy
    epsilon_micro, delta = info.privacy_budget
    if mode == "none" or clip_fp <= 0:
        return {"mode": "none", "epsilon_spent": None, "epsilon_target": None}
    spent = [a.dp_spent_micro for a in accounts.values()]
    return {
        "mode": mode,
        "epsilon_spent": max(spent, default=0) / 1e6,
        "epsilon_target": epsilon_micro / 1e6 if epsilon_micro else None,
        "delta": float(delta),
        "clip_norm": clip_fp / 65536,
        "noise_multiplier": noise_milli / 1000,
        "participations_max": max((a.dp_participations for a in accounts.values()), default=0),
        "budget_spent_after_round": budget_spent_after,
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
    privacy = s.get("privacy", {})
    if privacy.get("mode", "none") != "none":
        target = privacy["epsilon_target"]
        lines.append(
            f"privacy         {privacy['mode']} DP, epsilon spent {privacy['epsilon_spent']:.2f}"
            + (f" of {target:g}" if target else "")
            + f" (delta {privacy['delta']:g}, z {privacy['noise_multiplier']:g})"
            + (
                f"; budget spent after round {privacy['budget_spent_after_round']}"
                if privacy.get("budget_spent_after_round") is not None
                else ""
            )
        )
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
    marks = plots.run_marks(fed.cfg, rows, summary)
    plots.save(plots.accuracy_figure(rows, summary, marks), run_dir / "accuracy.png")
    plots.save(plots.round_time_figure(rows), run_dir / "round_time.png")
    if rows and "client_balances" in rows[0]:
        attackers = set(summary.get("attackers", []))
        figure = plots.balances_figure(rows, attackers, fed.cfg.chain.client_balance)
        plots.save(figure, run_dir / "balances.png")
