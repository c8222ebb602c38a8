"""`fedray run` end to end on the shared local Ray cluster, with the minimal preset: the run finishes,
accuracy rises, results are on disk round by round, `fedray chain verify --recompute` passes, every
validator holds identical blocks; a pool slowed down like a loaded host changes no global model
hash (rounds wait for their clients, not for a clock); and faults end no run: a corrupt payload, a
killed client pool, a killed validator, a pool whose round fails."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from fedray.cli import main as cli_main
from fedray.config import load_config
from fedray.federation.driver import RunStopped
from fedray.federation.outputs import RunResult
from fedray.runtime.launch import run

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "fedray" / "conf" / "preset" / "minimal.yaml"


def blocks_by_validator(run_dir: Path) -> list[list[bytes]]:
    out = []
    for db in sorted((run_dir / "chain").glob("validator-*/chain.sqlite")):
        with sqlite3.connect(db) as conn:
            out.append(
                [bytes(r[0]) for r in conn.execute("SELECT block FROM blocks ORDER BY height")]
            )
    return out


def assert_identical_prefixes(run_dir: Path) -> None:
    chains = blocks_by_validator(run_dir)
    common = min(len(c) for c in chains)
    assert common > 0
    for chain in chains[1:]:
        assert chain[:common] == chains[0][:common]


def hashes(result: RunResult) -> list[str]:
    return [r["global_model_hash"] for r in result.rows]


@pytest.fixture(scope="module")
def clean_run(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp("runs")
    return run(load_config(MINIMAL, [f"output_dir={out}"]))


def test_minimal_run_finishes_and_learns(clean_run: RunResult) -> None:
    s = clean_run.summary
    assert s["rounds"] == 2 and len(clean_run.rows) == 2 and s["finished"]
    assert s["final_accuracy"] > s["initial_accuracy"] + 0.2
    assert clean_run.rows[1]["accuracy"] > clean_run.rows[0]["accuracy"] - 0.05
    for name in (
        "config.yaml",
        "metrics.parquet",
        "summary.json",
        "model.safetensors",
        "accuracy.png",
        "round_time.png",
        "checkpoints/round-00000.safetensors",
        "checkpoints/round-00001.safetensors",
    ):
        assert (clean_run.run_dir / name).exists(), name
    import pyarrow.parquet as pq

    from fedray.federation.metrics import METRICS_SCHEMA

    table = pq.read_table(clean_run.run_dir / "metrics.parquet")
    assert table.schema == METRICS_SCHEMA and table.num_rows == 2
    assert table.column("run_id").to_pylist() == [clean_run.run_dir.name] * 2
    assert s["global_model_hash"] == hashes(clean_run)[-1]
    assert (
        json.loads((clean_run.run_dir / "summary.json").read_text())["global_model_hash"]
        == (s["global_model_hash"])
    )
    assert [r["close_reason"] for r in clean_run.rows] == ["quota", "quota"]
    assert s["deadline_rounds"] == [] and s["missed_updates"] == {}


def test_chain_verify_recompute_and_identical_blocks(clean_run: RunResult) -> None:
    assert cli_main(["chain", "verify", str(clean_run.run_dir), "--recompute"]) == 0
    assert_identical_prefixes(clean_run.run_dir)


def test_a_slow_client_pool_changes_no_global_model_hash(
    clean_run: RunResult, tmp_path: Path
) -> None:
    # The pool sleeps 8 s before each round: with a 4-block deadline (blocks take 0.2 s plus
    # the commit pause and consensus), the deadline in blocks passes long before it delivers, so
    # a block-count deadline would cut it.
    overrides = [f"output_dir={tmp_path}", "faults.slow_pool_s=8", "chain.round_deadline_blocks=4"]
    slow = run(load_config(MINIMAL, overrides))
    assert hashes(slow) == hashes(clean_run)
    assert all(r["closed_at"] - r["opened_at"] > 4 for r in slow.rows)  # it waited
    assert [r["close_reason"] for r in slow.rows] == ["quota", "quota"]


def test_a_stop_request_ends_the_run_at_its_next_tick(ray_cluster: None, tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    import ray
    from ray._private import state

    recorded: list[int] = []
    start_ms = time.time() * 1000
    cfg = load_config(MINIMAL, [f"output_dir={tmp_path}", "rounds=6"])
    with pytest.raises(RunStopped, match="after 1 rounds"):
        run(
            cfg,
            on_round=lambda row: recorded.append(row["round"]),
            should_stop=lambda: bool(recorded),
        )
    assert recorded == [0]  # asked at the tick after the first round: no second round recorded
    (run_dir,) = tmp_path.iterdir()
    assert pq.read_table(run_dir / "metrics.parquet").column("round").to_pylist() == [0]
    ours = [
        a
        for a in state.actors().values()
        if a["ActorClassName"] in ("ValidatorService", "PoolService")
        and float(a["StartTime"]) >= start_ms
    ]
    assert ours and {a["State"] for a in ours} == {"DEAD"}  # the run's own stop ended them
    assert ray.is_initialized()  # the caller's Ray stays up


@pytest.mark.slow  # a killed pool, a killed validator, a failing round: about a minute
def test_faults_end_no_run(ray_cluster: None, tmp_path: Path) -> None:
    cfg = load_config(
        MINIMAL,
        [
            f"output_dir={tmp_path}",
            "rounds=4",
            "runtime.client_pools=2",
            "chain.round_timeout_s=3",
            "faults.corrupt_payload_round=0",
            "faults.kill_pool_round=1",
            "faults.kill_validator_round=1",
            "faults.pool_error_round=2",
        ],
    )
    result = run(cfg)
    rows = result.rows
    assert [r["round"] for r in rows] == [0, 1, 2, 3]
    pool0 = result.summary["missed_updates"]
    # Round 0: one payload altered after signing, refused at every ingress; its client never
    # answers, so the round closes on its (3 s) deadline, and the terminal and summary say who.
    for log in (result.run_dir / "chain").glob("validator-*/ingress_rejections.jsonl"):
        codes = [json.loads(line)["code"] for line in log.read_text().splitlines()]
        assert codes.count("payload_hash") == 1, log
    assert rows[0]["close_reason"] == "deadline" and len(rows[0]["missed_clients"]) == 1
    assert result.summary["deadline_rounds"] == [{"round": 0, "missed": rows[0]["missed_clients"]}]
    assert result.summary["economy"]["penalties"] == {"invalid_payload": 1}  # provable: slashed
    # Round 1: pool 0 killed, rebuilt, and its clients declare missed updates: no deadline wait.
    assert rows[1]["close_reason"] == "quota" and rows[1]["skipped_clients"] == pool0["1"]
    assert 0 < rows[1]["included"] < rows[1]["selected"]
    # Round 2: pool 0's round fails inside the pool: the same, and the run goes on.
    assert rows[2]["close_reason"] == "quota" and rows[2]["skipped_clients"] == pool0["2"]
    assert rows[3]["included"] == rows[3]["selected"]
    assert result.summary["dead_validators"] == [3]
    assert result.summary["final_accuracy"] > result.summary["initial_accuracy"]
    assert cli_main(["chain", "verify", str(result.run_dir), "--recompute"]) == 0
    assert_identical_prefixes(result.run_dir)


def test_config_typo_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["run", str(MINIMAL), "roundz=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'roundz'" in err and "rounds" in err
