"""The unit costs behind docs/scaling.md, measured in one process on this machine.

Per transaction: one Ed25519 verification (PyNaCl, a transfer's signed bytes). Per account of the
population, once per round opening on every validator: the eligibility scan and the draw
(`selection.eligible_clients` + `select_clients`, on a genesis state of N clients). Per payload
byte: SHA-256 of the payload (`tensors_digest`, which every ingress computes for every update) and
a `ray.put` + `ray.get` from another process through the object store (a payload's way from a
pool to an ingress; on one machine: shared memory, between machines: the network). Per parameter
of each update: the chain's fixed-point FedAvg (`make_strategy("fedavg")`, one thread), below and
above the size from which it runs compiled loops. Per pair of updates and parameter: the exact Gram
matrix of a round's updates, which the contribution flags (`node/scoring.py`) need.

    python experiments/scale_costs.py             # prints one line per cost
    python experiments/scale_costs.py --no-ray    # without the object store figure

A figure, not a test. In-process costs are CPU seconds of the measuring thread, so a loaded machine
stretches them less than wall time; the object store's is wall time (run it on a quiet machine).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from fedray.aggregation.base import ClientDelta  # noqa: E402
from fedray.aggregation.dots import exact_gram  # noqa: E402
from fedray.aggregation.fixedpoint import make_batch, quantize  # noqa: E402
from fedray.aggregation.registry import make_strategy  # noqa: E402
from fedray.core.contracts.accounts import Transfer  # noqa: E402
from fedray.core.contracts.selection import eligible_clients, select_clients  # noqa: E402
from fedray.core.crypto import key_from_seed  # noqa: E402
from fedray.core.journal import Journal  # noqa: E402
from fedray.core.state import Genesis, GenesisAccount  # noqa: E402
from fedray.core.tx import make_tx  # noqa: E402
from fedray.storage.tensors import tensors_digest  # noqa: E402


def best_of(
    fn: Callable[[], object], repeats: int, clock: Callable[[], float] = time.thread_time
) -> float:
    """Median seconds of `repeats` calls after one warm-up: CPU seconds of this thread by
    default (what the call costs, whatever else the machine runs), wall seconds where the work
    happens in other processes (the object store)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def verify_us() -> float:
    from fedray.runtime.tx_bench import verify_rate

    key = key_from_seed(b"scale-costs")
    stx = make_tx(key, "scale-costs", 0, Transfer(key_from_seed(b"to").public_key, 1))
    return 1e6 / verify_rate(stx, seconds=1.0)


def selection_ms(n: int) -> float:
    clients = tuple(
        GenesisAccount(key_from_seed(b"c%d" % i).public_key, balance=1, stake=1000, is_client=True)
        for i in range(n)
    )
    validator = GenesisAccount(key_from_seed(b"v").public_key, stake=10**6, is_validator=True)
    journal = Journal(Genesis("scale-costs", 1_700_000_000_000, (*clients, validator)).state())
    seed = bytes(32)
    return 1e3 * best_of(lambda: select_clients(eligible_clients(journal), 100, seed), 5)


def digest_ns_per_byte(size: int) -> float:
    payload = {"w": np.ones(size // 4, np.int32)}
    return 1e9 * best_of(lambda: tensors_digest(payload), 5) / size


def object_store_ns_per_byte(size: int) -> float:
    import ray

    from fedray.runtime.cluster import init_ray

    started = init_ray(num_cpus=1, object_store_mb=200)
    try:

        @ray.remote(num_cpus=0)
        def touch(a: np.ndarray) -> int:
            return int(a[-1])

        array = np.ones(size // 4, np.int32)

        def trip() -> None:
            ray.get(touch.remote(ray.put(array)))

        wall = time.perf_counter
        small = best_of(lambda: ray.get(touch.remote(ray.put(np.ones(1, np.int32)))), 5, wall)
        return 1e9 * max(0.0, best_of(trip, 5, wall) - small) / size
    finally:
        if started:
            ray.shutdown()


def fedavg_ns_per_param(k: int, params: int) -> float:
    rng = np.random.default_rng(0)
    updates = [
        ClientDelta(
            rng.bytes(32),
            quantize({"w": rng.standard_normal(params).astype(np.float32) * 0.01}),
            100 + i,
        )
        for i in range(k)
    ]
    strategy = make_strategy("fedavg", {}, threads=1)
    return 1e9 * best_of(lambda: strategy.aggregate(updates), 3) / (k * params)


def gram_ns_per_pair_param(k: int, params: int) -> float:
    """The exact Gram matrix the contribution flags need (`dots.exact_gram`), per pair of updates
    and parameter, on values the size of real updates (the direct path)."""
    rng = np.random.default_rng(1)
    updates = [
        ClientDelta(
            rng.bytes(32),
            quantize({"w": rng.standard_normal(params).astype(np.float32) * 0.01}),
            100,
        )
        for _ in range(k)
    ]
    batch = make_batch(updates)
    return 1e9 * best_of(lambda: exact_gram(batch), 3) / (k * k * params)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    print(f"load_avg={os.getloadavg()[0]:.1f} cpus={os.cpu_count()}")
    print(f"verify_us_per_tx={verify_us():.1f}")
    for n in (1000, 10_000):
        ms = selection_ms(n)
        print(f"selection clients={n} ms={ms:.1f} us_per_client={1e3 * ms / n:.2f}")
    print(f"sha256_ns_per_byte={digest_ns_per_byte(16 * 2**20):.2f}")
    if not args.no_ray:
        print(f"object_store_ns_per_byte={object_store_ns_per_byte(64 * 2**20):.3f}")
    # 10M values stay on numpy's sums; 40M run the compiled loops (fixedpoint.COMPILED_MIN_VALUES)
    print(f"fedavg_ns_per_param_update={fedavg_ns_per_param(100, 100_000):.2f}")
    print(f"fedavg_compiled_ns_per_param_update={fedavg_ns_per_param(40, 1_000_000):.2f}")
    print(f"gram_ns_per_pair_param={gram_ns_per_pair_param(100, 100_000):.3f}")


if __name__ == "__main__":
    main()
