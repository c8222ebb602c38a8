"""A three-node Ray cluster on this machine (`ray.cluster_utils.Cluster`: a head and two workers,
token authentication on, every listener on loopback) running `fedray run` as a user would, with
one worker node removed while the run goes on. Run by `test_multinode.py` in a process of its own
(a cluster of its own cannot share a process with the session's Ray).

Usage: python multinode_driver.py OUT_DIR [fedray run overrides ...]
Prints one JSON line: where each validator ran, the node removed, the CLI's exit status, output.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Before Ray is imported (as fedray/__init__ does): loopback node addresses; and token
# authentication on every node started here.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_AUTH_MODE"] = "token"
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))

import pyarrow.parquet as pq  # noqa: E402
import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

NODE = {"num_cpus": 1, "object_store_memory": 75 * 1024 * 1024}
TIMEOUT_S = 600


def validator_nodes(n: int, deadline: float) -> list[str]:
    """The node of each validator: bundle i of the run's placement group holds validator i."""
    while time.monotonic() < deadline:
        for table in ray.util.placement_group_table().values():
            bundles = table.get("bundles_to_node_id", {})
            if table.get("state") == "CREATED" and len(bundles) == n:
                return [bundles[i] for i in range(n)]
        time.sleep(0.5)
    raise TimeoutError("the run's placement group never formed")


def rows(out: Path) -> int:
    """Rounds recorded so far by the run writing under `out`."""
    with contextlib.suppress(Exception):  # not there yet, or being rewritten
        (metrics,) = out.glob("*/metrics.parquet")
        return int(pq.read_metadata(metrics).num_rows)
    return 0


def main(out: Path, overrides: list[str]) -> dict[str, Any]:
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    run: subprocess.Popen[str] | None = None
    try:
        workers = [cluster.add_node(**NODE) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)  # to see placement, as an operator would
        head_id = cluster.head_node.node_id
        worker_ids = [w.node_id for w in workers]
        cli = [sys.executable, "-m", "fedray.cli", "run", "--address", cluster.address]
        run = subprocess.Popen(
            [*cli, f"output_dir={out}", *overrides],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + TIMEOUT_S
        placed = validator_nodes(4, deadline)
        while rows(out) < 1:  # remove a node once the chain has closed a round
            if run.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the run ended or stalled before its first round closed")
            time.sleep(0.5)
        report: dict[str, Any] = {"validator_nodes": placed, "head": head_id, "workers": worker_ids}
        # A worker that holds exactly one validator (SPREAD puts 4 bundles on 3 nodes 2/1/1).
        victim = next((w for w in workers if placed.count(w.node_id) == 1), None)
        if victim is None:
            return report  # not spread: the test says so
        report["rounds_before_removal"] = rows(out)
        cluster.remove_node(victim)
        output, _ = run.communicate(timeout=max(1.0, deadline - time.monotonic()))
        report.update(
            returncode=run.returncode,
            output=output[-6000:],
            removed=victim.node_id,
            removed_validator=placed.index(victim.node_id),
        )
        return report
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.wait()
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), sys.argv[2:])), flush=True)
