"""`fedray sweep` on the session's Ray (Tune runs its trials on the Ray it finds): each trial a
full run in its own placement group, ASHA stopping a losing trial after its first round, and
every actor of every trial ended by its run's `finally`, the stopped trial's included."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from fedray.cli import main
from fedray.sweep import sweep

ROOT = Path(__file__).resolve().parents[2]
FEDRAY_ACTORS = {"ValidatorService", "IngressService", "PoolService"}


def fedray_actors_since(start_ms: float) -> list[dict[str, str]]:
    """Validators, ingresses and pools started after `start_ms` (the GCS's actor table: the
    state API needs the dashboard, which fedray's Ray does not run)."""
    from ray._private import state

    return [
        a
        for a in state.actors().values()
        if a["ActorClassName"] in FEDRAY_ACTORS and float(a["StartTime"]) >= start_ms
    ]


def test_asha_stops_the_losing_trial_and_every_actor_ends_cleanly(
    ray_cluster: None, tmp_path: Path
) -> None:
    import ray

    file = tmp_path / "sweep.yaml"
    file.write_text(
        yaml.safe_dump(
            {
                "name": "asha",
                # one validator keeps it short; fedavg lets sign flipping hurt
                "base": {
                    "config": "minimal",
                    "overrides": ["rounds=2", "chain.validators=1", "strategy=fedavg"],
                },
                "grid": {"attack": ["none", "sign_flip"]},
                "scheduler": {"asha": {"grace_period": 1, "reduction_factor": 2}},
                # one at a time, so the attacked trial meets ASHA's rung with the clean one on it
                "resources": {"driver_cpus": 0.2, "max_concurrent_trials": 1},
                "output_dir": str(tmp_path / "sweeps"),
            }
        )
    )
    start_ms = time.time() * 1000
    groups_before = set(ray.util.placement_group_table())
    out = sweep(file, verbose=0)
    rows = pq.read_table(out.parquet).to_pylist()
    assert [r["attack"] for r in rows] == ["none", "sign_flip"]
    assert [r["status"] for r in rows] == ["completed", "stopped"]
    assert [(r["rounds"], r["of_rounds"]) for r in rows] == [(2, 2), (1, 2)]
    assert rows[0]["accuracy"] > rows[1]["accuracy"]
    for r in rows:  # each trial is a run with its own directory and chain
        run_dir = Path(r["run_dir"])
        assert (run_dir / "chain" / "validator-0").is_dir()
        assert run_dir.parent == out.directory / "runs"
    # ASHA stops every trial at max_t: the completed one still finished its run
    assert (Path(rows[0]["run_dir"]) / "summary.json").exists()
    assert not (Path(rows[1]["run_dir"]) / "summary.json").exists()
    assert (out.directory / "accuracy.png").exists()

    actors = fedray_actors_since(start_ms)
    # trial 1: a validator (hosting its ingress), a pool; trial 2: the same and the attackers' pool
    assert len(actors) == 5
    assert {a["State"] for a in actors} == {"DEAD"}
    # ended by the run's `finally` (its ray.kill, or its handles dropped right after the kill:
    # the GCS records whichever reaches it first), not by Tune removing the trial's group or
    # ending the trial's actor (their owner)
    by_run = ("killed by `ray.kill`", "all references to the actor were removed")
    causes = [str(a["DeathCause"]).split("owner_id")[0] for a in actors]
    print(causes)
    assert all(any(c in cause for c in by_run) for cause in causes), causes
    groups = ray.util.placement_group_table()
    assert {p["state"] for p in groups.values()} <= {"REMOVED"}
    # the trials' groups, sized driver + validator + pool(s), and no other: every actor was
    # placed in its trial's group (a run outside one makes a SPREAD group for its validators)
    new = [g for i, g in groups.items() if i not in groups_before]
    assert sorted((g["strategy"], len(g["bundles"])) for g in new) == [("PACK", 3), ("PACK", 4)]


@pytest.mark.slow  # four trials of four validators, three rounds each: about three minutes
def test_the_example_sweep_runs_its_2x2_grid(
    ray_cluster: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # output_dir: sweeps, under the working directory
    assert main(["sweep", str(ROOT / "examples" / "sweep.yaml"), "--verbose", "0"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.endswith("results.parquet") and Path(last).parent.parent == tmp_path / "sweeps"
    rows = pq.read_table(last).to_pylist()
    grid = [(r["strategy"], r["attack"]) for r in rows]
    assert sorted(grid) == [
        ("fedavg", "none"),
        ("fedavg", "sign_flip"),
        ("median", "none"),
        ("median", "sign_flip"),
    ]
    assert {r["status"] for r in rows} == {"completed"}
    assert all(r["rounds"] == 3 and r["accuracy"] is not None for r in rows)
    by = {(r["strategy"], r["attack"]): r["accuracy"] for r in rows}
    assert by[("median", "sign_flip")] > by[("fedavg", "sign_flip")]  # the robust rule holds
