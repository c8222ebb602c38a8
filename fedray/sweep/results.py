"""A finished sweep's outputs: the results table, the accuracy plot and `results.parquet`.

One `TrialOutcome` per trial, read from Tune's ResultGrid (`outcomes`): the trial's varied config
keys, its last reported round, and a status of fedray's own words, since Tune calls a trial that
ASHA stopped and one that ran all its rounds both TERMINATED:
- `completed`: the run finished (all its rounds, its summary and final model written);
- `stopped`: the scheduler (ASHA) ended it earlier;
- `error`: the run raised (its message is kept).
Ignored: Tune's own experiment state files (they stay under `tune/` in the sweep directory).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedray.config import RunConfig


@dataclass(frozen=True)
class TrialOutcome:
    trial: str
    config: dict[str, Any]  # the varied keys and this trial's values
    rounds: int  # rounds reported
    of_rounds: int  # rounds the trial's config asks for
    accuracy: float | None  # of its last reported round
    loss: float | None
    error: str | None = None
    run_dir: str | None = None
    seconds: float | None = None
    history: tuple[tuple[int, float], ...] = field(default=(), compare=False)  # (round, accuracy)

    finished: bool = False  # the run returned (its summary and final model are written)

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return "completed" if self.finished else "stopped"


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def outcomes(
    grid: Any,
    varied: Sequence[str],
    config_of: Callable[[dict[str, Any]], RunConfig],
    run_dirs: Callable[[str], list[Path]],
) -> list[TrialOutcome]:
    """Each trial of Tune's ResultGrid `grid` as an outcome (in trial order); `run_dirs` lists a
    trial's run directories by its trial id."""
    found = []
    for result in grid:
        config = dict(result.config or {})
        metrics = result.metrics or {}
        trial = str(metrics.get("trial_id") or Path(result.path).name)
        history: list[tuple[int, float]] = []
        frame = result.metrics_dataframe
        if frame is not None and "accuracy" in frame and "round" in frame:
            history = [
                (int(r), float(a))
                for r, a in zip(frame["round"], frame["accuracy"], strict=True)
                if not (math.isnan(float(r)) or math.isnan(float(a)))
            ]
        dirs = sorted(run_dirs(trial))
        error = None
        if result.error is not None:
            lines = [line for line in str(result.error).splitlines() if line.strip()]
            error = lines[-1].strip() if lines else type(result.error).__name__
        found.append(
            TrialOutcome(
                trial=trial,
                config={k: config.get(k) for k in varied},
                rounds=int(metrics.get("rounds_done", 0) or 0),
                of_rounds=config_of(config).rounds,
                accuracy=_number(metrics.get("accuracy")),
                loss=_number(metrics.get("loss")),
                error=error,
                run_dir=str(dirs[-1]) if dirs else None,
                seconds=_number(metrics.get("time_total_s")),
                history=tuple(history),
                finished=bool(metrics.get("finished", False)),
            )
        )
    return sorted(found, key=lambda o: o.trial)


def table(found: Sequence[TrialOutcome], varied: Sequence[str]) -> str:
    """One line per trial: its varied keys, rounds, final accuracy and status."""
    head = ["trial", *varied, "rounds", "accuracy", "status"]
    rows = [
        [
            o.trial,
            *(_text(o.config.get(k)) for k in varied),
            f"{o.rounds}/{o.of_rounds}",
            "-" if o.accuracy is None else f"{o.accuracy:.4f}",
            o.status if o.error is None else f"error: {o.error[:60]}",
        ]
        for o in found
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_parquet(found: Sequence[TrialOutcome], varied: Sequence[str], path: Path) -> Path:
    """One row per trial: trial, its config keys (one column each), rounds, of_rounds, accuracy,
    loss, status, error, run_dir, seconds. A key whose values mix types becomes text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {"trial": [o.trial for o in found]}
    for key in varied:
        values = [o.config.get(key) for o in found]
        kinds = {type(v) for v in values if v is not None}
        if len(kinds) > 1 and kinds != {int, float}:
            values = [None if v is None else str(v) for v in values]
        columns[key] = values
    columns.update(
        rounds=[o.rounds for o in found],
        of_rounds=[o.of_rounds for o in found],
        accuracy=pa.array([o.accuracy for o in found], pa.float64()),
        loss=pa.array([o.loss for o in found], pa.float64()),
        status=[o.status for o in found],
        error=pa.array([o.error for o in found], pa.string()),
        run_dir=pa.array([o.run_dir for o in found], pa.string()),
        seconds=pa.array([o.seconds for o in found], pa.float64()),
    )
    pq.write_table(pa.table(columns), path)
    return path


def plot(found: Sequence[TrialOutcome], varied: Sequence[str], path: Path) -> Path:
    """Test accuracy per round, one line per trial, labelled by its varied values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 5))
    for o in found:
        if not o.history:
            continue
        label = ", ".join(f"{k}={_text(o.config.get(k))}" for k in varied)
        rounds, accuracy = zip(*o.history, strict=True)
        line = "-" if o.status == "completed" else "--"
        ax.plot(rounds, accuracy, line, marker="o", label=f"{label} ({o.status})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy per round, by trial (dashed: stopped early or failed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
