"""`fedray run` on a three-node Ray cluster on this machine (head + two workers, token
authentication on): the validators are spread over all three nodes, a worker node holding one
validator is removed after the first round closed, and the chain goes on to the last round without
that validator (its last blocks certified by the other three); a client pool that ran on that node
is rebuilt elsewhere by the run's own recovery.

The cluster runs in a process of its own (`multinode_driver.py`): the session's Ray fixture may
already be connected in this one, and a process holds one Ray connection.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fedray.storage.blockstore import BlockStore

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 4


@pytest.mark.slow
def test_run_goes_on_when_a_node_with_a_validator_leaves() -> None:
    root = Path(tempfile.mkdtemp(prefix="fr-"))  # Ray's socket paths must stay short
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        RAY_TMPDIR=str(root),
        HOME=str(root),  # no ~/.ray of the user's: the driver makes the cluster's token
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    )
    try:
        out = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("multinode_driver.py")),
                str(root / "out"),
                "preset=minimal",
                f"rounds={ROUNDS}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert out.returncode == 0, out.stderr[-4000:]
        report = json.loads(out.stdout.strip().splitlines()[-1])
        nodes = report["validator_nodes"]
        assert set(nodes) == {report["head"], *report["workers"]}  # spread over all three
        assert report["returncode"] == 0, report["output"]
        assert nodes.count(report["removed"]) == 1 and report["removed"] in report["workers"]

        (run_dir,) = (root / "out").iterdir()
        heights = pq.read_table(run_dir / "metrics.parquet").column("height").to_pylist()
        assert len(heights) == ROUNDS and report["rounds_before_removal"] < ROUNDS
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["finished"] and summary["rounds"] == ROUNDS
        assert summary["dead_validators"] == [report["removed_validator"]]

        gone = report["removed_validator"]
        gone_key = bytes.fromhex(
            json.loads((run_dir / "keys.json").read_text())["validators"][gone]
        )
        live = next(i for i in range(4) if i != gone)
        with BlockStore.reading(run_dir / "chain" / f"validator-{live}") as store:
            top = store.height()
            last = store.get(top).cert()
        with BlockStore.reading(run_dir / "chain" / f"validator-{gone}") as store:
            stopped_at = store.height()
        # The chain went on past the lost node (and on, with empty blocks, until the run stopped).
        assert top >= summary["height"] > stopped_at
        assert gone_key not in last.signers() and len(last.signers()) == 3
    finally:
        shutil.rmtree(root, ignore_errors=True)
