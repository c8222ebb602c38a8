"""Process CPU and wall time of pinning a batch of blobs with `BlobStore.batch`, packed (one pack
file) against one file per blob, by blob size: the measurement behind `blobs.PACK_MAX_BLOB` (the
size from which a blob in a batch keeps its own file). Each repeat pins into a fresh store
whose fan-out folders exist (a store some rounds old).

    python experiments/bench_blob_pack.py [--sizes 19000 262144 1048576 4194304] [--repeats 9]

Prints one JSON line per size: median milliseconds per blob of user and system CPU and of wall
time, for both layouts.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from fedray.storage import blobs
from fedray.storage.blobs import BlobStore


def pin(root: Path, payloads: list[dict[str, np.ndarray]], pack_max: int) -> tuple[float, ...]:
    for sub in range(256):
        (root / f"{sub:02x}").mkdir(parents=True)
    store = BlobStore(root)
    blobs.PACK_MAX_BLOB = pack_max
    before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with store.batch():
        for p in payloads:
            store.put(p)
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
    n = len(payloads)
    return (
        (after.ru_utime - before.ru_utime) / n,
        (after.ru_stime - before.ru_stime) / n,
        wall / n,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[19_000, 262_144, 1 << 20, 4 << 20])
    parser.add_argument("--batch-bytes", type=int, default=16 << 20, help="bytes pinned a batch")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--dir", default=None, help="where the stores go (default: TMPDIR)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for size in args.sizes:
        count = max(2, min(100, args.batch_bytes // size))
        payloads = [
            {"w": rng.integers(-(2**20), 2**20, size=size // 4, dtype=np.int32)}
            for _ in range(count)
        ]
        runs: dict[str, list[tuple[float, ...]]] = {"packed": [], "files": []}
        with tempfile.TemporaryDirectory(prefix="fedray-bench-pack-", dir=args.dir) as tmp:
            for r in range(args.repeats):  # alternated, so both see the same disk state
                runs["packed"].append(pin(Path(tmp) / f"p{r}", payloads, 1 << 62))
                runs["files"].append(pin(Path(tmp) / f"f{r}", payloads, -1))
        out: dict[str, object] = {"blob_bytes": size, "blobs_a_batch": count}
        for name, rows in runs.items():
            for i, what in enumerate(("user", "sys", "wall")):
                out[f"{name}_{what}_ms"] = round(1e3 * statistics.median(r[i] for r in rows), 4)
        print(json.dumps(out))


if __name__ == "__main__":
    main()
