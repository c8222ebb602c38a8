"""A finished run's PNG plots (matplotlib, Agg backend), from its metrics rows and summary.

- `accuracy.png`: test accuracy per round, the centralized baseline when trained, and vertical
  marks where the attack starts and where a governance change took effect (`run_marks`: a passed
  `fl_rule` change is a rule switch; other passed parameter changes are marked too).
- `round_time.png`: each round's time split as stacked bars, the legend outside the axes.
- `balances.png`: client balance changes since genesis as one band per group (honest clients,
  attackers): the median line and the min-max band (`balance_bands`), not a line per client.

Each `*_figure` returns the figure (tests inspect it); `save` writes and closes it. Ignored: any
styling beyond legibility.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedray.config import RunConfig


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> None:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)


@dataclass(frozen=True)
class Mark:
    """A vertical line on the accuracy plot: at round `x`, with `label`, of `kind`."""

    x: float
    label: str
    kind: str  # attack | rule | param


def run_marks(
    cfg: RunConfig, rows: Sequence[dict[str, Any]], summary: dict[str, Any]
) -> list[Mark]:
    """Where the attack starts (its first round) and where each passed governance change took
    effect: the first round that closed at or after the proposal's execution height."""
    marks = []
    a = cfg.attack
    if a.name != "none" and a.fraction > 0:
        marks.append(Mark(float(a.start_round), f"attack starts ({a.name})", "attack"))
    for outcome in summary.get("governance", []):
        height = outcome.get("execute_height")
        if outcome.get("status") != "executed" or height is None:
            continue
        action = cfg.governance[outcome["action"]]
        if action.kind != "param_change":
            continue
        after = [r["round"] for r in rows if r["closed_at"] >= height]
        if not after:
            continue
        if action.key == "fl_rule":
            marks.append(Mark(float(min(after)), f"rule -> {action.value}", "rule"))
        else:
            marks.append(Mark(float(min(after)), f"{action.key} = {action.value}", "param"))
    return marks


_MARK_STYLE = {
    "attack": {"color": "tab:red", "linestyle": "--"},
    "rule": {"color": "tab:green", "linestyle": "-."},
    "param": {"color": "tab:purple", "linestyle": ":"},
}


def accuracy_figure(
    rows: Sequence[dict[str, Any]], summary: dict[str, Any], marks: Sequence[Mark] = ()
) -> Any:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    rounds = [r["round"] for r in rows]
    ax.plot(rounds, [r["accuracy"] for r in rows], marker="o", label="global model (on chain)")
    if "baseline_accuracy" in summary:
        ax.axhline(
            summary["baseline_accuracy"], color="grey", linestyle="--", label="centralized baseline"
        )
    for mark in marks:
        ax.axvline(mark.x, linewidth=1.2, **_MARK_STYLE[mark.kind])
        ax.annotate(
            mark.label,
            xy=(mark.x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            rotation=90,
            va="top",
            fontsize=7,
            color=_MARK_STYLE[mark.kind]["color"],
        )
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{summary.get('name', 'run')}: test accuracy per round")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


ROUND_PARTS = (
    ("train_seconds", "training"),
    ("consensus_seconds", "consensus"),
    ("aggregation_seconds", "aggregation"),
    ("waiting_seconds", "waiting"),
)


def round_time_figure(rows: Sequence[dict[str, Any]]) -> Any:
    """Stacked bars; the legend sits right of the axes, so it never covers a bar."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    rounds = np.array([r["round"] for r in rows])
    bottom = np.zeros(len(rows))
    for key, label in ROUND_PARTS:
        values = np.array([r[key] for r in rows], dtype=np.float64)
        ax.bar(rounds, values, bottom=bottom, label=label)
        bottom += values
    ax.set_xlabel("round")
    ax.set_ylabel("seconds")
    ax.set_title("round time split")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Band:
    """One group's balance changes per round: median, min and max over its clients."""

    label: str
    clients: int
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray


def balance_bands(rows: Sequence[dict[str, Any]], attackers: set[int], genesis: int) -> list[Band]:
    """Honest clients and attackers (each group that has clients) as bands."""
    series = np.array([r["client_balances"] for r in rows], dtype=np.float64) - genesis
    bands = []
    for label, members in (
        ("honest clients", [c for c in range(series.shape[1]) if c not in attackers]),
        ("attackers", [c for c in range(series.shape[1]) if c in attackers]),
    ):
        if members:
            group = series[:, members]
            bands.append(
                Band(
                    label,
                    len(members),
                    np.median(group, axis=1),
                    group.min(axis=1),
                    group.max(axis=1),
                )
            )
    return bands


_BAND_COLOR = {"honest clients": "tab:blue", "attackers": "tab:red"}


def balances_figure(rows: Sequence[dict[str, Any]], attackers: set[int], genesis: int) -> Any:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    rounds = [r["round"] for r in rows]
    for band in balance_bands(rows, attackers, genesis):
        color = _BAND_COLOR[band.label]
        ax.fill_between(rounds, band.low, band.high, color=color, alpha=0.2, linewidth=0)
        ax.plot(
            rounds,
            band.median,
            color=color,
            linewidth=1.8,
            label=f"{band.label} ({band.clients}): median, min-max",
        )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("round")
    ax.set_ylabel("balance change since genesis")
    ax.set_title("client balances: rewards minus fees")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
