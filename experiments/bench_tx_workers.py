"""Committed tx/s against signature-verification workers: `fedray bench tx` once per worker count,
the counts alternated over repeats (so load from other processes hits them alike), each run on a
fresh local Ray instance. Writes every run's figures to JSON and plots tx/s and the limit ratio.
A figure, not a test.

    python experiments/bench_tx_workers.py --workers 1,2,4 --repeats 2 --txs 10000 \\
        --out docs/benchmarks/tx_workers
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

from fedray.runtime.tx_bench import TxBenchResult, run


def plot(runs: list[dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workers = sorted({r["workers"] for r in runs})
    fig, ax = plt.subplots(figsize=(6, 4))
    for w in workers:
        ys = [r["tx_per_s"] for r in runs if r["workers"] == w]
        ax.scatter([w] * len(ys), ys, color="tab:blue", alpha=0.5, s=18)
    medians = [statistics.median(r["tx_per_s"] for r in runs if r["workers"] == w) for w in workers]
    ax.plot(workers, medians, color="tab:blue", marker="o", label="committed tx/s (median)")
    limits = [statistics.median(r["limit"] for r in runs if r["workers"] == w) for w in workers]
    ax.plot(workers, limits, color="tab:gray", ls="--", label="verification limit (same runs)")
    ax.set_xlabel("signature-verification threads per validator and ingress")
    ax.set_ylabel("transactions per second")
    ax.set_xticks(workers)
    ax.set_ylim(bottom=0)
    loads = [r["load_avg"] for r in runs]
    ax.set_title(
        f"fedray bench tx, {runs[0]['validators']} validators, 2 cores "
        f"(load avg {min(loads):.0f}-{max(loads):.0f})",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--txs", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks/tx_workers"))
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        order = counts if rep % 2 == 0 else counts[::-1]
        for w in order:
            r: TxBenchResult = run(
                args.validators, args.accounts, args.txs, args.batch, args.seconds, w
            )
            runs.append(
                {**dataclasses.asdict(r), "tx_per_s": r.tx_per_s, "limit": r.limit, "repeat": rep}
            )
            args.out.with_suffix(".json").parent.mkdir(parents=True, exist_ok=True)
            args.out.with_suffix(".json").write_text(json.dumps(runs, indent=1) + "\n")
    plot(runs, args.out.with_suffix(".png"))
    print(f"{'workers':>7} {'tx/s':>16} {'ratio':>14} {'load':>10}")
    for w in counts:
        rs = [r for r in runs if r["workers"] == w]
        tps = [r["tx_per_s"] for r in rs]
        ratios = [r["tx_per_s"] / r["limit"] for r in rs]
        loads = [r["load_avg"] for r in rs]
        print(
            f"{w:>7} {min(tps):>7.0f}-{max(tps):<7.0f} {min(ratios):>6.3f}-{max(ratios):<6.3f} "
            f"{min(loads):>4.0f}-{max(loads):<4.0f}"
        )


if __name__ == "__main__":
    main()
