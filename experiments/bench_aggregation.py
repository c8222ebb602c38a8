"""Benchmark the deterministic aggregation rules against a plain float mean.

K updates of P float32 parameters are quantized to int32 fixed point (not timed); every rule then
aggregates them, and `X.mean(0)` over the same values as a (K, P) float32 array is timed right
before each run as the yardstick (ratio = median of the paired ratios). A figure, not a test.

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

from fedray.aggregation.base import ClientDelta  # noqa: E402
from fedray.aggregation.fixedpoint import quantize  # noqa: E402
from fedray.aggregation.registry import make_strategy  # noqa: E402


def rules(k: int) -> list[tuple[str, str, dict[str, object]]]:
    """(label, name, config) per row; Krum tolerates f = K/8 (4 of 32)."""
    f, m = k // 8, k // 2
    return [
        ("fedavg (equal n)", "fedavg", {"weighted": False}),
        ("fedavg (sample-weighted)", "fedavg", {}),
        ("median", "median", {}),
        ("trimmed_mean beta=0.1", "trimmed_mean", {"beta": 0.1}),
        (f"krum f={f}", "krum", {"f": f}),
        (f"multi_krum f={f} m={m}", "multi_krum", {"f": f, "m": m}),
        ("centered_clipping 1x median", "centered_clipping", {"radius": 1.0}),
        ("bucketing s=2 + median", "bucketing", {"s": 2, "inner": "median"}),
    ]


def paired(
    fn: Callable[[], object], baseline: Callable[[], object], repeats: int
) -> list[tuple[float, float]]:
    """`repeats` (baseline ms, fn ms) pairs measured back to back after one warm-up of each, so
    that load from other processes on a shared host hits both sides of each ratio alike."""
    fn()
    baseline()
    pairs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        baseline()
        t1 = time.perf_counter()
        fn()
        t2 = time.perf_counter()
        pairs.append((1e3 * (t1 - t0), 1e3 * (t2 - t1)))
    return pairs


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
        ClientDelta(rng.bytes(32), quantize({"w": floats[i]}), int(rng.integers(100, 1000)))
        for i in range(args.k)
    ]

    def float_mean() -> object:
        return floats.mean(0)

    blas = os.environ["OPENBLAS_NUM_THREADS"]
    print(
        f"K={args.k} updates x P={args.params:,} params; {args.repeats} paired runs per row; "
        f"OPENBLAS_NUM_THREADS={blas}; {os.cpu_count()} CPUs"
    )
    print("ms: median (min) of the rule; ratio: median over runs of rule / float32 X.mean(0)")
    print(f"{'rule':<30} {'threads':>7} {'ms':>16} {'float mean ms':>14} {'ratio':>7}")
    jobs: list[tuple[str, int, Callable[[], object]]] = []
    for label, name, config in rules(args.k):
        for t in threads:
            strategy = make_strategy(name, config, threads=t)
            jobs.append((label, t, lambda s=strategy: s.aggregate(updates)))
    if args.naive_median:
        jobs.append(("float np.median (inexact)", 1, lambda: np.median(floats, axis=0)))
    for label, t, fn in jobs:
        pairs = paired(fn, float_mean, args.repeats)
        base = statistics.median(p[0] for p in pairs)
        ms = [p[1] for p in pairs]
        ratio = statistics.median(p[1] / p[0] for p in pairs)
        timing = f"{statistics.median(ms):.1f} ({min(ms):.1f})"
        print(f"{label:<30} {t:>7} {timing:>16} {base:>14.1f} {ratio:>7.2f}")


if __name__ == "__main__":
    main()
