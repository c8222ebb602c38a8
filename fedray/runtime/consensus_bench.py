"""Consensus figures on local Ray: empty-block commit latency (p50, p99) and blocks per second for
validator actors on this machine (`fedray bench consensus`).

Latency is, per validator and block, the validator's commit time minus the block's time (the
proposer's clock when it built the block; one machine, one clock), so it covers propose, prevote,
precommit and commit, not the pause of `block_interval_s` before an empty block. Blocks per second
are heights committed over the measured window, after a short warm-up. Figures, not pass/fail: the
machine is shared, so compare runs made side by side.

Deliberately ignored: transactions (empty blocks only) and faults.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fedray.core.devchain import dev_genesis
from fedray.runtime.localnet import ValidatorNet

WARMUP_HEIGHTS = 3


@dataclass(frozen=True)
class BenchResult:
    validators: int
    block_interval_s: float
    blocks: int
    seconds: float
    latency_p50_ms: float
    latency_p99_ms: float
    rounds_above_zero: int  # commits decided in a later round (a timeout fired)
    load_avg: float  # 1-minute load average at the end of the window (the machine is shared)

    @property
    def blocks_per_s(self) -> float:
        return self.blocks / self.seconds

    def line(self) -> str:
        return (
            f"validators={self.validators} block_interval_s={self.block_interval_s:g} "
            f"blocks={self.blocks} blocks_per_s={self.blocks_per_s:.1f} "
            f"latency_p50_ms={self.latency_p50_ms:.1f} latency_p99_ms={self.latency_p99_ms:.1f} "
            f"late_rounds={self.rounds_above_zero} load_avg={self.load_avg:.1f}"
        )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def bench(validators: int, seconds: float, block_interval_s: float, root: Path) -> BenchResult:
    genesis, keys, _ = dev_genesis("fedray-bench", n_validators=validators, n_accounts=0)
    net = ValidatorNet(
        root,
        genesis,
        keys,
        timeout_propose_s=max(1.0, 2 * block_interval_s + 0.5),
        timeout_vote_s=0.5,
        timeout_delta_s=0.5,
        block_interval_s=block_interval_s,
        gossip_s=0.5,
    )
    try:
        net.start()
        start_h = max(a.height for a in net.wait_for_height(WARMUP_HEIGHTS, 120))
        t0 = time.monotonic()
        time.sleep(seconds)
        end_h = min(net.heights())
        elapsed = time.monotonic() - t0
        load = os.getloadavg()[0]
        stats = net.call("commit_stats")
    finally:
        net.stop()
    latencies = [
        float(commit - made) for per in stats for h, _, made, commit in per if start_h < h <= end_h
    ]
    late = len({h for per in stats for h, r, _, _ in per if start_h < h <= end_h and r > 0})
    return BenchResult(
        validators,
        block_interval_s,
        end_h - start_h,
        elapsed,
        statistics.median(latencies),
        percentile(latencies, 99),
        late,
        load,
    )


def run(validators: list[int], seconds: float, intervals: list[float]) -> list[BenchResult]:
    """Start a local Ray instance if none is connected; one fresh validator set per figure."""
    import ray

    from fedray.runtime.cluster import init_ray

    started = init_ray(num_cpus=2, object_store_mb=128)
    results = []
    try:
        for interval in intervals:
            for n in validators:
                with tempfile.TemporaryDirectory(prefix="fedray-bench-") as tmp:
                    result = bench(n, seconds, interval, Path(tmp))
                print(result.line(), flush=True)
                results.append(result)
    finally:
        if started:
            ray.shutdown()
    return results
