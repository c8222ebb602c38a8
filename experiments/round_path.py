"""Seconds per round and blocks per round of fedray alone on `fedray bench round`'s task, through
`fedray run`'s own path (no Flower needed): for comparing two versions of fedray side by side.

    python experiments/round_path.py 10 8     # clients per round, rounds
    python experiments/round_path.py 100 14 runtime.ingress=actor   # then config overrides

Prints one JSON line: the median seconds per round over every round but the first (from the
rows' `wall_seconds`), each round's blocks (`closed_at - opened_at`), the medians of the row's
time split, the CPU seconds per round of each kind of process between the first round's close
and the last's (`scale_bench.sample_processes`: driver, validators, ingresses, pools, Ray; a
figure the machine's load stretches far less than wall time), the resident memory of each kind
at the last close, and the final accuracy.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from typing import Any

from fedray.config import load_config
from fedray.runtime import launch
from fedray.runtime.round_bench import RoundTask
from fedray.runtime.round_bench_side import fedray_overrides
from fedray.runtime.scale_bench import Sample, sample_processes

SPLIT = ("round_seconds", "train_seconds", "consensus_seconds", "waiting_seconds")


def main(argv: list[str]) -> int:
    per_round, rounds = int(argv[0]), int(argv[1])
    task = RoundTask(per_round=per_round, rounds=rounds)
    samples: list[Sample] = []

    def closed(row: dict[str, Any]) -> None:
        if row["round"] in (1, rounds - 1):  # the second round's close and the last one's
            samples.append(sample_processes(os.getpid()))

    with tempfile.TemporaryDirectory(prefix="fedray-round-path-") as tmp:
        cfg = load_config(None, [*fedray_overrides(task, tmp), *argv[2:]])
        rows = launch.run(cfg, on_round=closed).rows
    walls = [float(r["wall_seconds"]) for r in rows]
    later = [b - a for a, b in zip(walls, walls[1:], strict=False)]
    out = {
        "per_round": per_round,
        "overrides": argv[2:],
        "median_round_s": statistics.median(later),
        "blocks": [int(r["closed_at"]) - int(r["opened_at"]) for r in rows],
        "split": {k: statistics.median(float(r[k]) for r in rows[1:]) for k in SPLIT},
        "cpu_per_round": cpu_split(samples, rounds - 2),
        "accuracy": float(rows[-1]["accuracy"]),
        "rss_gib_at_last_close": rss_split(samples[-1]) if samples else {},
    }
    print(json.dumps(out))
    return 0


def rss_split(sample: Sample) -> dict[str, float]:
    """Resident GiB by kind of process at one sample, and the total."""
    split = {k: round(v / 2**30, 3) for k, v in sample.rss.items()}
    return {**split, "total": round(sum(split.values()), 3)}


def cpu_split(samples: list[Sample], rounds: int) -> dict[str, float]:
    """CPU seconds per round by kind between two samples `rounds` rounds apart, and the total."""
    if len(samples) < 2 or rounds < 1:
        return {}
    first, last = samples
    split = {k: round((v - first.cpu.get(k, 0.0)) / rounds, 4) for k, v in last.cpu.items()}
    return {**split, "total": round(sum(split.values()), 4)}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
