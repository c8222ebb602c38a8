"""Whether a round costs more late in a long run than early: seconds, CPU and resident memory per
round of each kind of process over an early and a late window of `fedray bench round`'s task,
through `fedray run`'s own path (no Flower needed).

    python experiments/round_growth.py 400            # rounds; windows 10-40 and (400-30)-(400-1)
    python experiments/round_growth.py 400 10 40 300 330 runtime.ingress=actor  # windows, overrides

Prints one JSON line per window: its rounds, the seconds per round between their closes, the CPU
seconds per round of each kind (driver, validators, pools, Ray; `scale_bench.sample_processes`)
and the resident MiB of each kind at the window's end. A cost that grows with the run's length
(a history walked each round, a file rewritten whole) shows as a late window dearer than the
early one; the machine's load moves both windows alike only if it is steady, so compare runs
made one after the other.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any

from round_path import cpu_split  # a sibling script: experiments/ is on sys.path

from fedray.config import load_config
from fedray.runtime import launch
from fedray.runtime.round_bench import RoundTask
from fedray.runtime.round_bench_side import fedray_overrides
from fedray.runtime.scale_bench import Sample, sample_processes


def windows(argv: list[str]) -> tuple[int, list[tuple[int, int]], list[str]]:
    rounds = int(argv[0])
    numbers = [a for a in argv[1:] if a.isdigit()]
    overrides = [a for a in argv[1:] if not a.isdigit()]
    if numbers and len(numbers) != 4:
        raise SystemExit("give four window bounds (early start, end, late start, end) or none")
    b = [int(n) for n in numbers] or [10, 40, rounds - 30, rounds - 1]
    if not 0 <= b[0] < b[1] <= b[2] < b[3] < rounds:
        raise SystemExit(f"windows {b} do not fit in {rounds} rounds")
    return rounds, [(b[0], b[1]), (b[2], b[3])], overrides


def main(argv: list[str]) -> int:
    rounds, spans, overrides = windows(argv)
    marks = {r for span in spans for r in span}
    samples: dict[int, tuple[float, Sample]] = {}

    def closed(row: dict[str, Any]) -> None:
        if row["round"] in marks:
            samples[row["round"]] = (time.time(), sample_processes(os.getpid()))

    task = RoundTask(per_round=100, rounds=rounds)
    with tempfile.TemporaryDirectory(prefix="fedray-round-growth-") as tmp:
        cfg = load_config(None, [*fedray_overrides(task, tmp), *overrides])
        launch.run(cfg, on_round=closed)
    for first, last in spans:
        (t0, s0), (t1, s1) = samples[first], samples[last]
        out = {
            "rounds": [first, last],
            "overrides": overrides,
            "seconds_per_round": round((t1 - t0) / (last - first), 4),
            "cpu_per_round": cpu_split([s0, s1], last - first),
            "rss_mib": {k: round(v / 2**20) for k, v in s1.rss.items()},
        }
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
