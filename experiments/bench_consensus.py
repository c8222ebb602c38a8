"""Consensus figures on local Ray: empty-block commit latency (p50, p99) and blocks/s with 4 and 7
validator actors, without pacing and with the run's default pacing (`block_interval_s`).

Run: `python experiments/bench_consensus.py [--validators 4 7 --seconds 20 --block-interval 0 0.05]`,
the same as `fedray bench consensus`; see `fedray.runtime.consensus_bench` for what is measured.
"""

from __future__ import annotations

import sys

from fedray.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "consensus", *sys.argv[1:]]))
