"""`fedray run` end to end on the shared local Ray cluster, with the minimal preset: the run finishes,
accuracy rises, `fedray chain verify --recompute` passes, every validator holds identical blocks;
and the faults of issue 5 (a killed client pool, a killed validator, a corrupt payload). The run with
a killed pool and validator takes about a minute here: `slow` (run it with `-m slow`)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from fedray.cli import main as cli_main
from fedray.config import load_config
from fedray.runtime.run import RunResult, run

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "conf" / "preset" / "minimal.yaml"


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


@pytest.fixture(scope="module")
def clean_run(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(MINIMAL, [f"output_dir={out}", "faults.corrupt_payload_round=0"])
    return run(cfg)


def test_minimal_run_finishes_and_learns(clean_run: RunResult) -> None:
    s = clean_run.summary
    assert s["rounds"] == 2 and len(clean_run.rows) == 2
    assert s["final_accuracy"] > s["initial_accuracy"] + 0.2
    assert clean_run.rows[1]["accuracy"] > clean_run.rows[0]["accuracy"] - 0.05
    for name in (
        "config.yaml",
        "metrics.parquet",
        "summary.json",
        "model.safetensors",
        "accuracy.png",
        "round_time.png",
    ):
        assert (clean_run.run_dir / name).exists(), name
    import pyarrow.parquet as pq

    columns = pq.read_table(clean_run.run_dir / "metrics.parquet").column_names
    for column in (
        "accuracy",
        "loss",
        "round_seconds",
        "tx_count",
        "bytes_moved",
        "selected",
        "included",
        "train_seconds",
        "consensus_seconds",
        "aggregation_seconds",
    ):
        assert column in columns


def test_chain_verify_recompute_and_identical_blocks(clean_run: RunResult) -> None:
    assert cli_main(["chain", "verify", str(clean_run.run_dir), "--recompute"]) == 0
    assert_identical_prefixes(clean_run.run_dir)


def test_corrupt_payload_is_rejected_at_ingress_and_recorded(clean_run: RunResult) -> None:
    # Round 0 had one payload altered after signing: every ingress refused it with the rule.
    for log in (clean_run.run_dir / "chain").glob("validator-*/ingress_rejections.jsonl"):
        codes = [json.loads(line)["code"] for line in log.read_text().splitlines()]
        assert codes.count("payload_hash") == 1, log
    first = clean_run.rows[0]
    assert first["included"] == first["selected"] - 1 and first["close_reason"] == "deadline"
    # The client signed its delivery of the altered payload: provable, so slashed exactly once.
    assert clean_run.summary["economy"]["penalties"] == {"invalid_payload": 1}
    assert clean_run.rows[1]["included"] == clean_run.rows[1]["selected"]


@pytest.mark.slow  # 54-90 s on the shared machine
def test_killed_pool_and_killed_validator(ray_cluster: None, tmp_path: Path) -> None:
    cfg = load_config(
        MINIMAL,
        [
            f"output_dir={tmp_path}",
            "rounds=3",
            "runtime.client_pools=2",
            "faults.kill_pool_round=1",
            "faults.kill_validator_round=1",
        ],
    )
    result = run(cfg)
    rows = result.rows
    assert [r["round"] for r in rows] == [0, 1, 2]
    # Round 1 lost the killed pool's clients and closed at its deadline; round 2 is whole again.
    assert rows[1]["close_reason"] == "deadline" and 0 < rows[1]["included"] < rows[1]["selected"]
    assert rows[2]["included"] == rows[2]["selected"]
    assert result.summary["dead_validators"] == [3]
    assert result.summary["final_accuracy"] > result.summary["initial_accuracy"]
    assert cli_main(["chain", "verify", str(result.run_dir), "--recompute"]) == 0
    assert_identical_prefixes(result.run_dir)


def test_config_typo_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["run", str(MINIMAL), "roundz=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'roundz'" in err and "rounds" in err
