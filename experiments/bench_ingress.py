"""CPU of an ingress's judging path per update, in one process, without Ray: a batch of signed
update transactions with int32 payloads of the bench task's model (digits MLP 64-64-10, 4,810
parameters), judged as `IngressNode._judge_all` judges a `submit` batch (signatures in the
verifier's threads, then each payload checked and pinned, the batch's pins synced together) into a
fresh blob store each repeat. Also times a validator's read back of the pinned blobs
(`BlobStore.get`: parse and digest check), which it does for each update when a round closes.

    python experiments/bench_ingress.py [--updates 100 --repeats 20]

Prints one JSON line: the median milliseconds of process CPU per update of judging (user and
system apart: creating, syncing and renaming files is system time) and of the read back, and the
digest of the pinned files, to compare versions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from fedray.core.contracts.rounds import Update
from fedray.core.contracts.slashing import delivery_message
from fedray.core.crypto import DOMAIN_PAYLOAD, key_from_seed
from fedray.core.tx import make_tx
from fedray.runtime.ingress import IngressNode
from fedray.storage.blobs import BlobStore
from fedray.storage.tensors import nbytes, tensors_digest

CHAIN = "bench-ingress"
LAYOUT = {
    "0.weight": ("<i4", (64, 64)),
    "0.bias": ("<i4", (64,)),
    "2.weight": ("<i4", (10, 64)),
    "2.bias": ("<i4", (10,)),
}


def batch(updates: int, seed: int) -> list[tuple[bytes, dict[str, np.ndarray], bytes]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(updates):
        key = key_from_seed(f"client-{i}".encode())
        payload = {
            k: rng.integers(-(2**20), 2**20, size=shape, dtype=np.int32)
            for k, (_, shape) in LAYOUT.items()
        }
        digest = tensors_digest(payload)
        tx = make_tx(key, CHAIN, 0, Update(1, digest, 10, nbytes(payload)))
        signature = key.sign(DOMAIN_PAYLOAD, CHAIN, delivery_message(1, digest))
        out.append((tx.raw, payload, signature))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dir", default=None, help="where the blob stores go (default: TMPDIR)")
    args = parser.parse_args()
    items = batch(args.updates, 0)
    payloads = [p for _, p, _ in items]
    judge_user, judge_sys, read, files = [], [], [], ""
    with tempfile.TemporaryDirectory(prefix="fedray-bench-ingress-", dir=args.dir) as tmp:
        for r in range(args.repeats):
            node_dir = Path(tmp) / f"node{r}"
            for sub in range(256):  # a store some rounds old: its fan-out folders exist
                (node_dir / "blobs" / f"{sub:02x}").mkdir(parents=True)
            node = IngressNode(str(node_dir), CHAIN, 1 << 20, LAYOUT, None, b"", 2)
            before = resource.getrusage(resource.RUSAGE_SELF)
            results = node._judge_all(items, payloads)
            after = resource.getrusage(resource.RUSAGE_SELF)
            judge_user.append((after.ru_utime - before.ru_utime) / args.updates)
            judge_sys.append((after.ru_stime - before.ru_stime) / args.updates)
            assert all(type(x).__name__ == "Admitted" for x in results), results[:1]
            store = BlobStore(node_dir / "blobs", read_only=True)
            digests = store.digests()
            t = time.process_time()
            for d in digests:
                store.get(d)
            read.append((time.process_time() - t) / args.updates)
            files = hashlib.sha256(b"".join(store.get_bytes(d) for d in digests)).hexdigest()
            node.verifier.close()
            node.log.close()
    print(
        json.dumps(
            {
                "updates": args.updates,
                "judge_user_ms_per_update": round(1e3 * statistics.median(judge_user), 4),
                "judge_sys_ms_per_update": round(1e3 * statistics.median(judge_sys), 4),
                "blob_get_cpu_ms_per_update": round(1e3 * statistics.median(read), 4),
                "pinned_files_sha256": files[:16],
            }
        )
    )


if __name__ == "__main__":
    main()
