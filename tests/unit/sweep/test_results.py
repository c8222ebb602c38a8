"""A sweep's outputs from its trials' outcomes: statuses in fedray's words, the table, the
parquet file (one row per trial) and the plot."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from fedray.sweep.results import TrialOutcome, plot, table, write_parquet
from fedray.sweep.trials import RoundReporter

VARIED = ["strategy", "data.alpha"]


def outcomes() -> list[TrialOutcome]:
    return [
        TrialOutcome(
            "t0",
            {"strategy": "fedavg", "data.alpha": 0.1},
            3,
            3,
            0.9,
            0.2,
            history=((0, 0.8), (1, 0.85), (2, 0.9)),
            finished=True,
        ),
        TrialOutcome(
            "t1", {"strategy": "median", "data.alpha": 1}, 1, 3, 0.5, 1.2, history=((0, 0.5),)
        ),
        TrialOutcome(
            "t2", {"strategy": "median", "data.alpha": 0.5}, 0, 3, None, None, error="RunError: x"
        ),
    ]


def test_status_says_completed_stopped_or_error() -> None:
    assert [o.status for o in outcomes()] == ["completed", "stopped", "error"]
    # every round reported but the run stopped before it returned (its outputs unwritten)
    cut = TrialOutcome("t3", {}, 3, 3, 0.9, 0.2, finished=False)
    assert cut.status == "stopped"


def test_the_last_round_is_reported_once_the_run_returned() -> None:
    reports: list[dict[str, object]] = []
    reporter = RoundReporter(3, reports.append)
    for r in range(3):
        reporter({"round": r, "accuracy": 0.5 + r / 10, "loss": 1.0, "client_balances": [1]})
    assert [x["rounds_done"] for x in reports] == [1, 2]  # the last one waits for the run
    assert "client_balances" not in reports[0]  # numbers only
    reporter.finish()
    assert reports[-1] == {
        "round": 2,
        "accuracy": 0.7,
        "loss": 1.0,
        "rounds_done": 3,
        "finished": True,
    }


def test_table_has_a_row_per_trial_with_its_keys_rounds_accuracy_and_status() -> None:
    lines = table(outcomes(), VARIED).splitlines()
    assert lines[0].split() == ["trial", "strategy", "data.alpha", "rounds", "accuracy", "status"]
    assert lines[1].split() == ["t0", "fedavg", "0.1", "3/3", "0.9000", "completed"]
    assert lines[2].split() == ["t1", "median", "1", "1/3", "0.5000", "stopped"]
    assert lines[3].split()[:5] == ["t2", "median", "0.5", "0/3", "-"]
    assert "error: RunError: x" in lines[3]


def test_parquet_has_one_row_per_trial(tmp_path: Path) -> None:
    path = write_parquet(outcomes(), VARIED, tmp_path / "results.parquet")
    rows = pq.read_table(path).to_pylist()
    assert [r["trial"] for r in rows] == ["t0", "t1", "t2"]
    assert [r["strategy"] for r in rows] == ["fedavg", "median", "median"]
    assert [r["data.alpha"] for r in rows] == [0.1, 1.0, 0.5]  # ints and floats stay numbers
    assert [r["status"] for r in rows] == ["completed", "stopped", "error"]
    assert [r["accuracy"] for r in rows] == [0.9, 0.5, None]
    assert [r["rounds"] for r in rows] == [3, 1, 0]


def test_a_key_with_mixed_value_types_is_text(tmp_path: Path) -> None:
    mixed = [
        TrialOutcome("a", {"k": "x"}, 1, 1, 0.1, 0.1),
        TrialOutcome("b", {"k": 2}, 1, 1, 0.1, 0.1),
    ]
    rows = pq.read_table(write_parquet(mixed, ["k"], tmp_path / "r.parquet")).to_pylist()
    assert [r["k"] for r in rows] == ["x", "2"]


def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = plot(outcomes(), VARIED, tmp_path / "accuracy.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
