"""Round time and peak memory against the population, from `fedray bench scale` output.

    fedray bench scale --clients 100,1000,3000,10000 --rounds 6 | tee scale.txt
    python experiments/plot_scale.py scale.txt docs/benchmarks/scale_round_time.png

Reads the `run clients=N ... rounds_s=a,b,c ...` lines (one per run) and the per-population
`clients=N runs=R ... round_s=... peak_rss_gib=...` lines; draws every round but each run's first
as a dot, the median per population as a line, the CPU seconds per round of all the run's processes, and
the peak memory on a second axis.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

Figures = tuple[dict[int, list[float]], dict[int, float], dict[int, float], dict[int, float]]


def parse(text: str) -> Figures:
    """Later rounds per population, and per population: median s per round, peak RSS in GiB,
    CPU seconds per round of all the run's processes."""
    rounds: dict[int, list[float]] = {}
    median: dict[int, float] = {}
    peak: dict[int, float] = {}
    cpu: dict[int, float] = {}
    for line in text.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if line.startswith("run clients="):
            later = [float(s) for s in fields["rounds_s"].split(",")][1:]
            rounds.setdefault(int(fields["clients"]), []).extend(later)
        elif re.match(r"^clients=\d+ runs=", line):
            median[int(fields["clients"])] = float(fields["round_s"])
            peak[int(fields["clients"])] = float(fields["peak_rss_gib"])
            if "cpu_s_per_round" in fields:
                cpu[int(fields["clients"])] = float(fields["cpu_s_per_round"])
    return rounds, median, peak, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("bench_output", type=Path)
    ap.add_argument("png", type=Path)
    args = ap.parse_args()
    rounds, median, peak, cpu = parse(args.bench_output.read_text())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for n, values in sorted(rounds.items()):
        ax.scatter([n] * len(values), values, color="tab:blue", alpha=0.35, s=14)
    sizes = sorted(median)
    ax.plot(sizes, [median[n] for n in sizes], "o-", color="tab:blue", label="s per round (median)")
    if cpu:
        ax.plot(
            sizes, [cpu[n] for n in sizes], "^:", color="tab:green", label="CPU s per round, all"
        )
    ax.set_xscale("log")
    ax.set_xlabel("registered clients (100 selected per round)")
    ax.set_ylabel("seconds per round")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    mem = ax.twinx()
    mem.plot(sizes, [peak[n] for n in sizes], "s--", color="tab:red", label="peak RSS (GiB)")
    mem.set_ylabel("peak RSS, all processes (GiB)")
    mem.set_ylim(0, max(4.5, max(peak.values()) * 1.1))
    lines = ax.get_legend_handles_labels()
    extra = mem.get_legend_handles_labels()
    ax.legend(lines[0] + extra[0], lines[1] + extra[1], loc="lower right", fontsize=8)
    ax.set_title("fedray run: round time and memory against the population")
    fig.tight_layout()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png, dpi=110)


if __name__ == "__main__":
    main()
