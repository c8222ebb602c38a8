"""Round-trip time of one Ray actor call, sync and async actors, optionally beside busy loops.

A fedray round is a chain of actor calls (pool -> ingress -> validator, proposals and votes between
validators, commits back to the driver). This prints what one such hop costs on this machine, the
figure behind "Under load" in docs/benchmarks.md. Not fedray code: Ray alone, on a small local
cluster (token authentication left on, loopback only).

    python experiments/ray_hop_latency.py              # quiet
    python experiments/ray_hop_latency.py --load 2     # beside two busy-looping processes
"""

from __future__ import annotations

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before Ray is imported

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import ray  # noqa: E402

BUSY = "while True: pass"


@ray.remote(num_cpus=0)
class SyncEcho:
    def ping(self, x: int) -> int:
        return x


@ray.remote(num_cpus=0)
class AsyncEcho:
    async def ping(self, x: int) -> int:
        return x


def percentiles(handle: object, calls: int) -> tuple[float, float, float]:
    times = []
    for i in range(calls):
        start = time.perf_counter()
        ray.get(handle.ping.remote(i))  # type: ignore[attr-defined]
        times.append(1e3 * (time.perf_counter() - start))
    times.sort()
    return times[calls // 2], times[int(calls * 0.9)], times[int(calls * 0.99)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--load", type=int, default=0, help="busy-looping processes beside the calls")
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.load)]
    try:
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20)
        actors = {"sync": SyncEcho.remote(), "async": AsyncEcho.remote()}
        ray.get([a.ping.remote(0) for a in actors.values()])
        print(f"load={args.load} load_avg={os.getloadavg()[0]:.1f} calls={args.calls}")
        for name, actor in actors.items():
            p50, p90, p99 = percentiles(actor, args.calls)
            print(f"{name} actor call ms: p50={p50:.2f} p90={p90:.2f} p99={p99:.2f}")
    finally:
        ray.shutdown()
        for p in busy:
            p.kill()


if __name__ == "__main__":
    main()
