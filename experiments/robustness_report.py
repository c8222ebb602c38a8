"""Reporting for `experiments/robustness.py`: the Markdown table (one per data set and partition,
rules x attacks, final accuracy and worst drop), the heatmap, and results.json (written and read
back, so `--replot` redraws without rerunning)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np


def markdown_table(results: Sequence[Any], rules: Sequence[str], attacks: Sequence[str]) -> str:
    """One table per (dataset, partition): rules x attacks, final test accuracy in percent."""
    out = []
    groups = sorted({(r.config.dataset, r.config.partition) for r in results})
    for ds, part in groups:
        acc = {
            (r.config.rule, r.config.attack): r.accuracy
            for r in results
            if (r.config.dataset, r.config.partition) == (ds, part)
        }
        diverged = {
            (r.config.rule, r.config.attack)
            for r in results
            if (r.config.dataset, r.config.partition) == (ds, part) and r.diverged_at is not None
        }
        out.append(f"### {ds}, {part}\n")
        out.append("| rule | " + " | ".join(attacks) + " | worst drop |")
        out.append("|---" * (len(attacks) + 2) + "|")
        for rule in rules:
            cells = [acc.get((rule, a)) for a in attacks]
            if all(c is None for c in cells):
                continue  # this rule was not run on this data set
            clean = acc.get((rule, "none"))
            attacked = [
                c for a, c in zip(attacks, cells, strict=True) if a != "none" and c is not None
            ]
            drop = f"{100 * (clean - min(attacked)):.1f}" if clean is not None and attacked else "-"
            row = " | ".join(
                "-" if c is None else f"{100 * c:.1f}" + ("†" if (rule, a) in diverged else "")
                for a, c in zip(attacks, cells, strict=True)
            )
            out.append(f"| {rule} | {row} | {drop} |")
        out.append("")
    return "\n".join(out)


def heatmap(
    results: Sequence[Any], rules: Sequence[str], attacks: Sequence[str], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r.config.dataset, r.config.partition) for r in results})
    cols = min(2, len(groups))
    rows = (len(groups) + cols - 1) // cols
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(1.1 * len(attacks) * cols + 2, 0.5 * len(rules) * rows + 1.5),
        squeeze=False,
        layout="constrained",
    )
    for ax, (ds, part) in zip(axes.flat, groups, strict=False):
        m = np.full((len(rules), len(attacks)), np.nan)
        for r in results:
            c = r.config
            if (c.dataset, c.partition) == (ds, part) and c.rule in rules and c.attack in attacks:
                m[rules.index(c.rule), attacks.index(c.attack)] = 100 * r.accuracy
        # 60..100 keeps the differences that matter visible; lower values saturate (numbers shown).
        im = ax.imshow(m, vmin=60, vmax=100, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(m):
            if not np.isnan(v):
                color = "w" if v < 80 else "k"
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7, color=color)
        ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(rules)), rules, fontsize=8)
        ax.set_title(f"{ds}, {part}", fontsize=9)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label="accuracy (%), clipped at 60")
    fig.suptitle("Final test accuracy (%), 20% Byzantine clients", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    results: Sequence[Any],
    baselines: dict[str, float],
    rules: Sequence[str],
    attacks: Sequence[str],
    out: Path,
    meta: dict[str, Any],
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(results, rules, attacks)
    base = "\n".join(f"- {k}: {100 * v:.1f}%" for k, v in baselines.items())
    note = "† the global model diverged: honest updates left the fixed-point range; run stopped.\n"
    (out / "table.md").write_text(
        f"## Centralized baselines\n\n{base}\n\n## Final test accuracy (%)\n\n{table}\n{note}"
    )
    heatmap(results, list(rules), list(attacks), out / "heatmap.png")
    records = [record(r) for r in results]
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "baselines": baselines, "runs": records}, indent=1, default=str)
    )


def record(result: Any) -> dict[str, Any]:
    """One run as a flat JSON object: the cell's fields, then the result's."""
    return {
        **asdict(result.config),
        **{k: v for k, v in asdict(result).items() if k != "config"},
    }


def from_record(rec: dict[str, Any], cell_type: type, result_type: type) -> Any:
    cell_fields = {f.name for f in fields(cell_type)}
    cell = cell_type(**{k: v for k, v in rec.items() if k in cell_fields})
    rest = {k: v for k, v in rec.items() if k not in cell_fields}
    rest["curve"] = tuple(rest["curve"])
    return result_type(config=cell, **rest)


def read_runs(path: Path, cell_type: type, result_type: type) -> list[Any]:
    """The runs of a runs.jsonl journal (one JSON object per line)."""
    lines = path.read_text().splitlines()
    return [from_record(json.loads(line), cell_type, result_type) for line in lines if line]


def load_results(
    path: Path, cell_type: type, result_type: type
) -> tuple[list[Any], dict[str, float], dict[str, Any]]:
    """Read a results.json back (to redraw the table and heatmap without rerunning)."""
    data = json.loads(path.read_text())
    results = [from_record(rec, cell_type, result_type) for rec in data["runs"]]
    return results, data["baselines"], data["meta"]
