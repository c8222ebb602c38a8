"""A run's directory name and plots: named by what differs from the default run (or its name), the
round-time legend clear of the bars, balances as bands per group, attack start and rule switches
marked on the accuracy plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedray.config import load_config
from fedray.federation.outputs import make_run_dir, run_label
from fedray.federation.plots import (
    Mark,
    accuracy_figure,
    balance_bands,
    balances_figure,
    round_time_figure,
    run_marks,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("overrides", "label"),
    [
        ([], "default"),
        (["strategy=krum", "attack=sign_flip"], "strategy=krum,attack=sign_flip"),
        (["attack=sign_flip", "strategy=krum"], "strategy=krum,attack=sign_flip"),
        (["name=mine", "strategy=krum"], "mine"),
        (["model.name=cnn"], "model.name=cnn"),  # the CNN's own epochs and lr are no change
        (["model.name=cnn", "training.lr=0.5"], "model.name=cnn,training.lr=0.5"),
        (["rounds=3", "chain.params.fl_rule=median"], "rounds=3,chain.params.fl_rule=median"),
        (["runtime.num_cpus=2", "output_dir=elsewhere", "metrics.ray=false"], "default"),
        (["baseline=false", "training.lr=0.2"], "training.lr=0.2,baseline=false"),
        # a group changed by name stands for its other keys (conf/data/synthetic.yaml)
        (["data=synthetic", "clients=30"], "clients=30,data=synthetic"),
        (["data=dirichlet", "data.alpha=0.1"], "data.partition=dirichlet,data.alpha=0.1"),
        (["privacy=local", "rounds=3"], "rounds=3,privacy=local"),  # the privacy group's pick
    ],
)
def test_run_label_names_what_differs_from_the_default(overrides: list[str], label: str) -> None:
    assert run_label(load_config(None, overrides)) == label


def test_a_preset_keeps_its_name_and_a_long_label_is_cut() -> None:
    assert (
        run_label(load_config(ROOT / "fedray" / "conf" / "preset" / "governance.yaml"))
        == "governance"
    )
    long = ["rounds=3", "seed=5", "chain.chain_id=" + "x" * 90, "training.batch_size=8"]
    # in the config's order; the long chain id does not fit in 120 characters
    assert run_label(load_config(None, long)) == "seed=5,rounds=3,training.batch_size=8,+1"


def test_the_run_directory_is_named_by_its_label(tmp_path: Path) -> None:
    cfg = load_config(None, ["strategy=krum", "attack=sign_flip", f"output_dir={tmp_path}"])
    first, second = make_run_dir(cfg), make_run_dir(cfg)
    assert first.name.startswith("strategy=krum,attack=sign_flip-20")
    assert second != first and (second / "config.yaml").exists()


def test_a_config_inside_such_a_directory_runs_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fedray.cli import main

    cfg = load_config(None, ["strategy=krum", "attack=sign_flip", f"output_dir={tmp_path}"])
    saved = make_run_dir(cfg) / "config.yaml"
    saved.write_text(saved.read_text() + "roundz: 3\n")  # stops the run before Ray starts
    assert main(["run", str(saved)]) == 2
    # the file was read (its typo is named), not taken for an override `<dir>/strategy=...`
    assert "unknown config key 'roundz'" in capsys.readouterr().err


def rows(n: int, balances: list[list[int]] | None = None) -> list[dict[str, Any]]:
    out = []
    for r in range(n):
        out.append(
            {
                "round": r,
                "accuracy": 0.1 * r,
                "closed_at": 10 * (r + 1),
                "train_seconds": 4.0,
                "consensus_seconds": 3.0,
                "aggregation_seconds": 1.0,
                "waiting_seconds": 2.0,
                "client_balances": balances[r] if balances else [0, 0, 0],
            }
        )
    return out


def test_marks_are_the_attack_start_and_passed_governance_changes() -> None:
    cfg = load_config(ROOT / "fedray" / "conf" / "preset" / "governance.yaml")
    summary = {
        "governance": [{"action": 0, "status": "executed", "execute_height": 45}],
    }
    marks = run_marks(cfg, rows(8), summary)
    assert marks == [
        Mark(3.0, "attack starts (sign_flip)", "attack"),
        Mark(4.0, "rule -> centered_clipping", "rule"),  # round 4 closed at height 50 >= 45
    ]
    rejected = {"governance": [{"action": 0, "status": "rejected", "execute_height": None}]}
    assert run_marks(cfg, rows(8), rejected) == marks[:1]
    assert run_marks(load_config(), rows(8), {}) == []


def test_the_accuracy_plot_draws_and_labels_each_mark() -> None:
    marks = [Mark(3.0, "attack starts (sign_flip)", "attack"), Mark(4.0, "rule -> median", "rule")]
    fig = accuracy_figure(rows(8), {"name": "x"}, marks)
    ax = fig.axes[0]
    vertical = [line for line in ax.lines if list(line.get_xdata()) in ([3.0, 3.0], [4.0, 4.0])]
    assert len(vertical) == 2
    assert [t.get_text() for t in ax.texts] == [m.label for m in marks]


def test_the_round_time_legend_covers_no_bar() -> None:
    many = rows(30)
    for r in many:  # tall bars everywhere, the top right corner included
        r["waiting_seconds"] = 50.0
    fig = round_time_figure(many)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    assert ax.patches
    for bar in ax.patches:
        assert not legend.overlaps(bar.get_window_extent(renderer))


def test_balances_are_one_band_per_group() -> None:
    genesis = 100
    balances = [[110, 120, 100, 90], [130, 150, 100, 70]]  # client 3 attacks
    bands = balance_bands(rows(2, balances), {3}, genesis)
    assert [(b.label, b.clients) for b in bands] == [("honest clients", 3), ("attackers", 1)]
    honest, bad = bands
    assert np.array_equal(honest.median, [10, 30]) and np.array_equal(honest.low, [0, 0])
    assert np.array_equal(honest.high, [20, 50]) and np.array_equal(bad.median, [-10, -30])
    fig = balances_figure(rows(2, [[100 + c for c in range(20)]] * 2), {0, 1}, genesis)
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # two medians and the zero line, not a line per client
    assert len(ax.collections) == 2  # the two min-max bands
