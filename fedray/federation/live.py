"""Live metrics: each round's metrics row, as the round closes, to TensorBoard event files in the
run directory, to MLflow when `metrics.mlflow_uri` is set, and as one plain log line when no
progress bar shows it.

`LiveMetrics.open(cfg, run_dir)` builds the sinks the config asks for; `round(row)` hands each the
row `RunRecord.add_row` returned; `close(finished)` flushes and ends them. A sink that fails in the
middle of a run is reported once and dropped: metrics never stop a run. Numbers only: `scalars`
picks the row's numeric columns and adds what the log line shows (tx/s over the run, clients
slashed and missed so far).

A resumed run appends to the same `tensorboard/` folder and continues the MLflow run whose id it
left in `mlflow_run_id` (steps are round numbers, so nothing is counted twice). Ray's metrics
(Prometheus) are `runtime.chain_metrics`'s: this module imports no Ray.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

from fedray.config import MLFLOW_MISSING, RunConfig
from fedray.errors import ConfigError

TENSORBOARD_DIR = "tensorboard"
MLFLOW_RUN_ID = "mlflow_run_id"


def scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The row's numbers (booleans and lists left out, run columns too) and derived figures."""
    from fedray.federation.metrics import RoundRow

    round_fields = set(RoundRow.__dataclass_fields__)
    out = {
        key: float(value)
        for key, value in row.items()
        if key in round_fields and isinstance(value, int | float) and not isinstance(value, bool)
    }
    out["tx_per_s"] = tx_per_s(row)
    out["slashed_clients"] = float(len(row.get("slashed_clients", ())))
    out["missed_clients"] = float(len(row.get("missed_clients", ())))
    return out


def tx_per_s(row: Mapping[str, Any]) -> float:
    """Transactions committed per second of the run so far."""
    return float(row["cumulative_txs"]) / max(1e-9, float(row["wall_seconds"]))


def round_line(row: Mapping[str, Any], of_rounds: int) -> str:
    """One plain line about a closed round (rounds count from 1 here, as on the progress bar)."""
    return (
        f"round {int(row['round']) + 1}/{of_rounds} acc={row['accuracy']:.3f} "
        f"loss={row['loss']:.3f} height={row['height']} tx/s={tx_per_s(row):.1f} "
        f"slashed={len(row['slashed_clients'])} missed={len(row['missed_clients'])} "
        f"round_s={row['round_seconds']:.2f}"
    )


class RoundSink(Protocol):
    def round(self, row: Mapping[str, Any]) -> None: ...

    def close(self, finished: bool) -> None: ...


class RoundLog:
    """`round_line` per round on `stream`, flushed at once (piped output sees every round)."""

    def __init__(self, of_rounds: int, stream: TextIO | None = None) -> None:
        self.of_rounds = of_rounds
        self.stream = stream

    def round(self, row: Mapping[str, Any]) -> None:
        stream = self.stream or sys.stdout
        stream.write(round_line(row, self.of_rounds) + "\n")
        stream.flush()

    def close(self, finished: bool) -> None:
        pass


def progress_bar(cfg: RunConfig, done: int) -> Any:
    """The run's tqdm bar over its rounds (`done` already recorded); drawn only where
    `shows_progress_bar`, so a piped run prints the log line instead."""
    from tqdm import tqdm

    return tqdm(
        total=cfg.rounds,
        initial=done,
        desc=f"fedray {cfg.name}",
        unit="round",
        disable=not shows_progress_bar(cfg.runtime.progress, sys.stderr),
        dynamic_ncols=True,
    )


def shows_progress_bar(progress: bool, terminal: TextIO) -> bool:
    """Whether the tqdm bar draws: `runtime.progress` on and `terminal` (stderr) a terminal
    (piped, the bar's carriage returns would only clutter a log)."""
    return progress and _isatty(terminal)


def wants_round_log(mode: str, progress: bool, terminal: TextIO) -> bool:
    """Whether to print a line per round: `always`, `never`, or (`auto`) when no bar shows."""
    if mode != "auto":
        return mode == "always"
    return not shows_progress_bar(progress, terminal)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or bare stream
        return False


class TensorBoardLog:
    """Every scalar of every row under `<run dir>/tensorboard/`, step = round, tag `round/<key>`."""

    def __init__(self, run_dir: Path) -> None:
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(logdir=str(run_dir / TENSORBOARD_DIR), flush_secs=5)

    def round(self, row: Mapping[str, Any]) -> None:
        step = int(row["round"])
        for key, value in scalars(row).items():
            self.writer.add_scalar(f"round/{key}", value, global_step=step)
        self.writer.flush()

    def close(self, finished: bool) -> None:
        self.writer.close()


class MlflowLog:
    """One MLflow run per fedray run: the config as params, every scalar per round (step =
    round), the run directory's summary and plots as artifacts at the end."""

    def __init__(self, cfg: RunConfig, run_dir: Path) -> None:
        try:
            import mlflow
        except ImportError:
            raise ConfigError(f"config key 'metrics.mlflow_uri': {MLFLOW_MISSING}") from None
        from mlflow.tracking import MlflowClient

        self.run_dir = run_dir
        self.client = MlflowClient(tracking_uri=cfg.metrics.mlflow_uri)
        id_file = run_dir / MLFLOW_RUN_ID
        if id_file.exists():  # a resumed run continues its MLflow run
            self.run_id = id_file.read_text().strip()
            self.client.update_run(self.run_id, status="RUNNING")
            return
        name = cfg.metrics.mlflow_experiment
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id if experiment else self.client.create_experiment(name)
        )
        run = self.client.create_run(experiment_id, run_name=run_dir.name)
        self.run_id = run.info.run_id
        id_file.write_text(self.run_id + "\n")
        params = [mlflow.entities.Param(k, v[:6000]) for k, v in flat_config(cfg).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def round(self, row: Mapping[str, Any]) -> None:
        import time

        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(row["round"])
        metrics = [Metric(k, v, now, step) for k, v in scalars(row).items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def close(self, finished: bool) -> None:
        if finished:
            for name in ("summary.json", "accuracy.png", "round_time.png", "balances.png"):
                if (self.run_dir / name).exists():
                    self.client.log_artifact(self.run_id, str(self.run_dir / name))
        self.client.set_terminated(self.run_id, status="FINISHED" if finished else "KILLED")


def flat_config(cfg: RunConfig) -> dict[str, str]:
    """The resolved config as dotted keys and string values (MLflow params)."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.structured(cfg))
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        elif isinstance(node, bool) or node is None:  # as YAML and the command line write them
            out[prefix] = {True: "true", False: "false", None: "null"}[node]
        else:
            out[prefix] = str(node)

    walk("", data)
    return out


class LiveMetrics:
    """The sinks of one run (module docstring); each failure is said once and the sink dropped."""

    def __init__(self, sinks: Sequence[RoundSink], say: Any = None) -> None:
        self.sinks = list(sinks)
        self.say = say or (lambda message: print(f"fedray: {message}", file=sys.stderr))

    @staticmethod
    def open(
        cfg: RunConfig, run_dir: Path, extra: Sequence[RoundSink] = (), say: Any = None
    ) -> LiveMetrics:
        m = cfg.metrics
        live = LiveMetrics([], say)
        if wants_round_log(m.log_rounds, cfg.runtime.progress, sys.stderr):
            live.sinks.append(RoundLog(cfg.rounds))
        if m.tensorboard:
            live.add(TensorBoardLog, run_dir)
        if m.mlflow_uri is not None:
            live.add(MlflowLog, cfg, run_dir)
        live.sinks += extra
        return live

    def add(self, build: Any, *args: Any) -> None:
        """Open one sink; one that cannot open (an MLflow server down) is said and left out."""
        try:
            self.sinks.append(build(*args))
        except ConfigError:
            raise
        except Exception as exc:  # the backend's own errors
            self.say(f"live metrics: {build.__name__} left out: {type(exc).__name__}: {exc}")

    def round(self, row: Mapping[str, Any]) -> None:
        for sink in list(self.sinks):
            try:
                sink.round(row)
            except Exception as exc:  # a metrics backend's own errors: the run goes on
                self._drop(sink, exc)

    def close(self, finished: bool) -> None:
        for sink in self.sinks:
            with contextlib.suppress(Exception):
                sink.close(finished)
        self.sinks = []

    def _drop(self, sink: RoundSink, exc: Exception) -> None:
        self.sinks.remove(sink)
        self.say(f"live metrics: {type(sink).__name__} stopped: {type(exc).__name__}: {exc}")
        with contextlib.suppress(Exception):
            sink.close(False)
