"""Live metrics without Ray: the per-round log line (and when it shows), TensorBoard event files
read back, MLflow on a local file store (skipped where mlflow is not installed) and its clear error
where it is configured but missing, and a failing sink that ends no run."""

from __future__ import annotations

import os
import select
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from fedray.config import load_config
from fedray.errors import ConfigError
from fedray.federation.live import (
    TENSORBOARD_DIR,
    LiveMetrics,
    MlflowLog,
    RoundLog,
    TensorBoardLog,
    round_line,
    scalars,
    shows_progress_bar,
    wants_round_log,
)
from fedray.federation.metrics import RoundRow, RunColumns


def make_row(round_: int, accuracy: float = 0.5, **changes: Any) -> dict[str, Any]:
    row = RoundRow(
        round=round_,
        accuracy=accuracy,
        loss=1.25,
        round_seconds=0.41,
        train_seconds=0.2,
        consensus_seconds=0.1,
        aggregation_seconds=0.05,
        waiting_seconds=0.06,
        tx_count=6,
        cumulative_txs=110,
        bytes_moved=1000,
        selected=6,
        included=6,
        accepted=5,
        clipped=0,
        close_reason="quota",
        opened_at=3,
        closed_at=9,
        height=41,
        wall_seconds=2.0,
        client_balances=[10, 20],
        client_stakes=[1, 1],
        client_jailed=[False, True],
        minted_total=7,
        burned_total=3,
        penalties_total=2,
        slashed_clients=[1],
        global_model_hash="ab" * 32,
        missed_clients=[],
        skipped_clients=[],
        clipped_coordinates=0,
    ).as_dict()
    columns = RunColumns.of(load_config(), "run-x").as_dict()
    return {**columns, **row, **changes}


def test_round_line_says_what_a_piped_log_needs() -> None:
    line = round_line(make_row(2, accuracy=0.9123), of_rounds=10)
    assert line == (
        "round 3/10 acc=0.912 loss=1.250 height=41 tx/s=55.0 slashed=1 missed=0 round_s=0.41"
    )


def test_scalars_are_the_rows_numbers_and_derived_figures() -> None:
    values = scalars(make_row(4, accuracy=0.75))
    assert values["accuracy"] == 0.75 and values["round"] == 4.0
    assert values["tx_per_s"] == 55.0 and values["slashed_clients"] == 1.0
    assert values["height"] == 41.0 and values["penalties_total"] == 2.0
    # run columns (seed, clients), strings and lists are no scalars of a round
    assert not {"seed", "clients", "alpha", "close_reason", "client_balances"} & set(values)


def test_round_log_writes_and_flushes_each_round_at_once() -> None:
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(write_fd, "w")  # block-buffered: only a flush reaches the pipe
    try:
        log = RoundLog(of_rounds=2, stream=stream)
        for r in range(2):
            log.round(make_row(r))
            ready, _, _ = select.select([read_fd], [], [], 0)
            assert ready, f"round {r}'s line was not flushed"
            assert os.read(read_fd, 4096).decode().startswith(f"round {r + 1}/2 acc=")
    finally:
        stream.close()
        os.close(read_fd)


def test_the_line_shows_when_no_progress_bar_draws() -> None:
    master, slave = os.openpty()
    terminal = os.fdopen(slave, "w")
    try:
        piped = open(os.devnull, "w")  # noqa: SIM115 - closed below
        try:
            assert shows_progress_bar(True, terminal) and not shows_progress_bar(True, piped)
            assert not shows_progress_bar(False, terminal)
            assert not wants_round_log("auto", True, terminal)
            assert wants_round_log("auto", True, piped)
            assert wants_round_log("auto", False, terminal)
            assert wants_round_log("always", True, terminal)
            assert not wants_round_log("never", False, piped)
        finally:
            piped.close()
    finally:
        terminal.close()
        os.close(master)


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the TFRecord event files under `folder`: tag -> [(step, value)]."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            record = data[at + 12 : at + 12 + length]  # after the length and its CRC
            at += 12 + length + 4  # and the record's CRC
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_tensorboard_event_files_hold_every_round_as_it_closes(tmp_path: Path) -> None:
    log = TensorBoardLog(tmp_path)
    log.round(make_row(0, accuracy=0.25))
    # readable before the run ends: the writer is flushed after each round
    assert read_scalars(tmp_path / TENSORBOARD_DIR)["round/accuracy"] == [(0, 0.25)]
    log.round(make_row(1, accuracy=0.5))
    log.close(True)
    found = read_scalars(tmp_path / TENSORBOARD_DIR)
    assert found["round/accuracy"] == [(0, 0.25), (1, 0.5)]
    assert found["round/tx_per_s"] == [(0, 55.0), (1, 55.0)]
    assert [v for _, v in found["round/round_seconds"]] == pytest.approx([0.41, 0.41])


class Failing:
    def __init__(self) -> None:
        self.closed: list[bool] = []

    def round(self, row: Any) -> None:
        raise OSError("disk full")

    def close(self, finished: bool) -> None:
        self.closed.append(finished)


def test_a_failing_sink_is_said_once_and_dropped(tmp_path: Path) -> None:
    said: list[str] = []
    failing = Failing()
    board = TensorBoardLog(tmp_path)
    live = LiveMetrics([failing, board], say=said.append)
    live.round(make_row(0))
    live.round(make_row(1))
    live.close(True)
    assert said == ["live metrics: Failing stopped: OSError: disk full"]
    assert failing.closed == [False]
    assert len(read_scalars(tmp_path / TENSORBOARD_DIR)["round/accuracy"]) == 2


def test_a_sink_that_cannot_open_is_left_out(tmp_path: Path) -> None:
    said: list[str] = []
    live = LiveMetrics([], say=said.append)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    live.add(TensorBoardLog, not_a_folder)
    assert live.sinks == [] and said[0].startswith("live metrics: TensorBoardLog left out: ")


def test_open_builds_the_configured_sinks(tmp_path: Path) -> None:
    cfg = load_config(None, ["metrics.log_rounds=always", "metrics.tensorboard=false"])
    live = LiveMetrics.open(cfg, tmp_path)
    assert [type(s).__name__ for s in live.sinks] == ["RoundLog"]
    cfg = load_config(None, ["metrics.log_rounds=never"])
    live = LiveMetrics.open(cfg, tmp_path)
    assert [type(s).__name__ for s in live.sinks] == ["TensorBoardLog"]
    live.close(False)


def test_mlflow_configured_but_missing_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # an import of mlflow now fails
    with pytest.raises(ConfigError, match=r"metrics.mlflow_uri.*mlflow is not installed"):
        load_config(None, [f"metrics.mlflow_uri=file:{tmp_path}/mlruns"])
    cfg = load_config(None)
    cfg = type(cfg)(**{**cfg.__dict__, "metrics": type(cfg.metrics)(mlflow_uri="file:x")})
    with pytest.raises(ConfigError, match=r"pip install 'fedray\[mlflow\]'"):
        MlflowLog(cfg, tmp_path)


def test_mlflow_gets_params_every_round_and_a_resumed_run_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 prefers a database store
    from mlflow.tracking import MlflowClient

    uri = f"file:{tmp_path / 'mlruns'}"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = load_config(None, [f"metrics.mlflow_uri={uri}", "metrics.mlflow_experiment=exp"])
    log = MlflowLog(cfg, run_dir)
    log.round(make_row(0, accuracy=0.25))
    log.close(False)
    again = MlflowLog(cfg, run_dir)  # resumed: the same MLflow run
    assert again.run_id == log.run_id
    again.round(make_row(1, accuracy=0.5))
    (run_dir / "summary.json").write_text("{}")
    again.close(True)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(log.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["strategy.name"] == "direction_filter"
    history = client.get_metric_history(log.run_id, "accuracy")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.25), (1, 0.5)]
    assert [a.path for a in client.list_artifacts(log.run_id)] == ["summary.json"]
    assert client.get_experiment_by_name("exp").experiment_id == run.info.experiment_id
