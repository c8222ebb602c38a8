"""Plots of docs/incentives.md: attackers caught per attack and partition, reward share against
data share, and accuracy per round against FedAvg (from the same per-run records as the tables)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from incentives_report import _group, _main_runs, _parts, share_rows


def plots(
    records: Sequence[dict[str, Any]], attacks: Sequence[str], rounds: int, out: Path
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    names = []
    main = _main_runs(records, rounds)
    datasets = sorted({r["cell"]["dataset"] for r in main})
    parts = _parts(main)
    groups = _group(main, "dataset", "attack", "partition")
    rows = [a for a in attacks if a != "none"]
    if datasets and rows:
        fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
        for ax, ds in zip(axes[0], datasets, strict=True):
            grid = np.full((len(rows), len(parts)), np.nan)
            for i, a in enumerate(rows):
                for j, p in enumerate(parts):
                    g = groups.get((ds, a, p), [])
                    total = sum(len(r["attackers"]) for r in g)
                    if total:
                        grid[i, j] = sum(len(r["caught_in_5"]) for r in g) / total
            ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
            ax.set_xticks(range(len(parts)), parts)
            ax.set_yticks(range(len(rows)), rows)
            for (i, j), v in np.ndenumerate(grid):
                if not np.isnan(v):
                    ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=8)
            ax.set_title(f"{ds}: attackers slashed within 5 rounds (%)")
        fig.tight_layout()
        fig.savefig(out / "caught.png", dpi=110)
        plt.close(fig)
        names.append("caught.png")
    shares = share_rows(records, rounds)
    if shares:
        fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
        for ax, ds in zip(axes[0], datasets, strict=True):
            for p in parts:
                g = [r for r in shares if r[0] == ds and r[1] == p]
                ax.scatter([r[2] for r in g], [r[3] for r in g], s=10, label=p, alpha=0.7)
            lim = max([r[2] for r in shares] + [r[3] for r in shares])
            ax.plot([0, lim], [0, lim], color="grey", linewidth=0.8)
            ax.set_xlabel("data share")
            ax.set_ylabel("reward share")
            ax.set_title(f"{ds}: clean runs, every client")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "reward_vs_data.png", dpi=110)
        plt.close(fig)
        names.append("reward_vs_data.png")
    clean = [r for r in records if r["cell"]["attack"] == "none" and r["cell"]["rounds"] == rounds]
    if clean:
        fig, axes = plt.subplots(
            1, len(datasets), figsize=(5.5 * len(datasets), 3.6), squeeze=False
        )
        for ax, ds in zip(axes[0], datasets, strict=True):
            for rule, style in (("fedavg", "--"), ("default", "-")):
                for p in parts:
                    curves = [
                        r["accuracy"]
                        for r in clean
                        if (r["cell"]["dataset"], r["cell"]["partition"], r["cell"]["rule"])
                        == (ds, p, rule)
                    ]
                    if curves:
                        n = min(len(c) for c in curves)
                        mean = np.mean([c[:n] for c in curves], axis=0)
                        ax.plot(range(n), mean, style, label=f"{rule} {p}", linewidth=1)
            ax.set_xlabel("round")
            ax.set_ylabel("test accuracy (mean over seeds)")
            ax.set_title(f"{ds}: no attack")
            ax.legend(fontsize=6, ncol=2)
            ax.set_ylim(0.5, 1.0)
        fig.tight_layout()
        fig.savefig(out / "accuracy.png", dpi=110)
        plt.close(fig)
        names.append("accuracy.png")
    return names
