"""Benchmark the deterministic aggregation rules against a plain float mean.

K updates of P float32 parameters are quantized to int32 fixed point (not timed); every rule then
aggregates them, and `X.mean(0)` over the same values as a (K, P) float32 array runs in the same
process as the yardstick. Each timing is the median of `--repeats` runs. A figure, not a test.

    python experiments/bench_aggregation.py                 # K=32, P=1M, threads 1 and 2
    python experiments/bench_aggregation.py --threads 1 --repeats 3

BLAS (used by Krum's Gram matrix and centered clipping's dot products) runs single-threaded unless
OPENBLAS_NUM_THREADS is set, as in a Ray worker (OMP_NUM_THREADS=1): on a shared 2-core host
OpenBLAS's own threads spin against other processes and run 5x slower. Results are exact either way.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from fedray.aggregation.base import Update  # noqa: E402
from fedray.aggregation.fixedpoint import quantize  # noqa: E402
from fedray.aggregation.registry import make_strategy  # noqa: E402

RULES: list[tuple[str, str, dict[str, object]]] = [
    ("fedavg (equal n)", "fedavg", {"weighted": False}),
    ("fedavg (sample-weighted)", "fedavg", {}),
    ("median", "median", {}),
    ("trimmed_mean beta=0.1", "trimmed_mean", {"beta": 0.1}),
    ("krum f=4", "krum", {"f": 4}),
    ("multi_krum f=4 m=16", "multi_krum", {"f": 4, "m": 16}),
    ("centered_clipping 1x median", "centered_clipping", {"radius": 1.0}),
    ("bucketing s=2 + median", "bucketing", {"s": 2, "inner": "median"}),
]


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time in ms over `repeats` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--k", type=int, default=32, help="updates")
    ap.add_argument("--params", type=int, default=1_000_000, help="float32 parameters per update")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--naive-median", action="store_true", help="also time np.median over floats")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]

    rng = np.random.default_rng(0)
    floats = (rng.standard_normal((args.k, args.params), dtype=np.float32) * 0.01).astype(
        np.float32
    )
    updates = [
        Update(rng.bytes(32), quantize({"w": floats[i]}), int(rng.integers(100, 1000)))
        for i in range(args.k)
    ]

    rows: list[tuple[str, int, float]] = []
    base = [timed(lambda: floats.mean(0), args.repeats)]
    for label, name, config in RULES:
        for t in threads:
            strategy = make_strategy(name, config, threads=t)
            rows.append((label, t, timed(lambda s=strategy: s.aggregate(updates), args.repeats)))
        base.append(timed(lambda: floats.mean(0), args.repeats))  # re-measure: the host is shared
    if args.naive_median:
        rows.append(("float np.median (inexact)", 1, timed(lambda: np.median(floats, axis=0), 1)))
    float_mean = statistics.median(base)

    blas = os.environ["OPENBLAS_NUM_THREADS"]
    print(
        f"K={args.k} updates x P={args.params:,} params; median of {args.repeats} runs; "
        f"OPENBLAS_NUM_THREADS={blas}; {os.cpu_count()} CPUs"
    )
    print(
        f"float32 X.mean(0): {float_mean:.1f} ms (median of {len(base)} measurements, "
        f"range {min(base):.1f}-{max(base):.1f})"
    )
    print(f"{'rule':<30} {'threads':>7} {'ms':>9} {'x float mean':>13}")
    for label, t, ms in rows:
        print(f"{label:<30} {t:>7} {ms:>9.1f} {ms / float_mean:>13.2f}")


if __name__ == "__main__":
    main()
