"""Seconds per round and blocks per round of fedray alone on `fedray bench round`'s task, through
`fedray run`'s own path (no Flower needed): for comparing two versions of fedray side by side.

    python experiments/round_path.py 10 8     # clients per round, rounds

Prints one JSON line: the median seconds per round over every round but the first (from the
rows' `wall_seconds`), each round's blocks (`closed_at - opened_at`), the medians of the row's
time split, and the final accuracy.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile

from fedray.config import load_config
from fedray.runtime import launch
from fedray.runtime.round_bench import RoundTask
from fedray.runtime.round_bench_side import fedray_overrides

SPLIT = ("round_seconds", "train_seconds", "consensus_seconds", "waiting_seconds")


def main(argv: list[str]) -> int:
    per_round, rounds = int(argv[0]), int(argv[1])
    task = RoundTask(per_round=per_round, rounds=rounds)
    with tempfile.TemporaryDirectory(prefix="fedray-round-path-") as tmp:
        rows = launch.run(load_config(None, fedray_overrides(task, tmp))).rows
    walls = [float(r["wall_seconds"]) for r in rows]
    later = [b - a for a, b in zip(walls, walls[1:], strict=False)]
    out = {
        "per_round": per_round,
        "median_round_s": statistics.median(later),
        "blocks": [int(r["closed_at"]) - int(r["opened_at"]) for r in rows],
        "split": {k: statistics.median(float(r[k]) for r in rows[1:]) for k in SPLIT},
        "accuracy": float(rows[-1]["accuracy"]),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
