"""Each block and each round of one `fedray run` on `fedray bench round`'s task: for every height
the consensus round that decided it, its transactions and its proposal time, then for every round
the heights that opened and closed it and the row's time split (training, consensus: from the last
pool's send to the close, waiting). For reading what a round is made of, e.g. beside busy loops:

    for i in 1 2; do python3 -c "while True: pass" & done
    python experiments/round_blocks.py 100 6 [key=value ...]    # clients per round, rounds
    kill %1 %2

The run's directory is kept under a temporary folder, whose path is printed last.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from fedray.config import load_config
from fedray.runtime import launch
from fedray.runtime.round_bench import RoundTask
from fedray.runtime.round_bench_side import fedray_overrides
from fedray.storage.blockstore import BlockStore


def main(argv: list[str]) -> int:
    task = RoundTask(per_round=int(argv[0]), rounds=int(argv[1]))
    out = tempfile.mkdtemp(prefix="fedray-round-blocks-")
    result = launch.run(load_config(None, [*fedray_overrides(task, out), *argv[2:]]))
    [run_dir] = Path(out).glob("bench-round*")
    with BlockStore.reading(run_dir / "chain" / "validator-0") as store:
        first = None
        for stored in store.iter_blocks():
            block, cert = stored.block(), stored.cert()
            first = block.header.time if first is None else first
            at = (block.header.time - first) / 1000
            print(f"height={block.height} round={cert.round} txs={len(block.txs)} at_s={at:.3f}")
    for r in result.rows:
        print(
            f"round={r['round']} opened_at={r['opened_at']} closed_at={r['closed_at']} "
            f"round_s={r['round_seconds']:.3f} train_s={r['train_seconds']:.3f} "
            f"consensus_s={r['consensus_seconds']:.3f} waiting_s={r['waiting_seconds']:.3f}"
        )
    print(run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
