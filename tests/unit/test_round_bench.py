"""`fedray bench round` without Ray or Flower: the task maps onto fedray's config, the figures are
folded from the runs as documented, the last line has its exact form, the memory sampler counts a
process's children, and a missing Flower is one line and exit status 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from fedray.cli import main as fedray_main
from fedray.config import load_config
from fedray.errors import ConfigError
from fedray.runtime.round_bench import (
    BenchRoundError,
    RoundTask,
    SideRun,
    compare,
    last_line,
    side_figures,
    tree_rss,
)
from fedray.runtime.round_bench_side import fedray_overrides

LAST_LINE = re.compile(r"^ratio=\d+\.\d\d rss_ratio=\d+\.\d\d acc_delta=[+-]\d\.\d{4}$")


def _run(side: str, k: int, rounds: list[float], acc: float, rss: int, total: float) -> SideRun:
    boundaries = [1.0]
    for r in rounds:
        boundaries.append(boundaries[-1] + r)
    return SideRun(side, k, total, boundaries, acc, rss)


def test_the_task_is_the_one_fedray_run_is_given(tmp_path: object) -> None:
    task = RoundTask(per_round=10, rounds=3)
    cfg = load_config(None, fedray_overrides(task, str(tmp_path)))
    assert (cfg.data.name, cfg.model.name, cfg.model.hidden) == ("digits", "mlp", 64)
    assert (cfg.clients, cfg.chain.clients_per_round, cfg.chain.validators) == (100, 10, 4)
    t = cfg.training
    assert (t.epochs, t.batch_size, t.lr, t.momentum) == (1, 8, 0.1, 0.9)
    assert cfg.strategy.name == "fedavg" and cfg.runtime.client_pools == 2
    assert cfg.runtime.address is None and not cfg.runtime.allow_unauthenticated
    assert cfg.rounds == 3 and cfg.baseline is False


def test_a_task_needs_two_rounds_and_a_possible_selection() -> None:
    with pytest.raises(ConfigError):
        RoundTask(rounds=1)
    with pytest.raises(ConfigError):
        RoundTask(per_round=101)


def test_the_first_round_is_set_apart_from_the_median_and_counted_in_start_up() -> None:
    run = _run("fedray", 10, [5.0, 0.2, 0.4, 0.3], 0.9, 100, total=20.0)
    assert run.rounds_s == pytest.approx([5.0, 0.2, 0.4, 0.3])
    assert run.startup_s == pytest.approx(20.0 - 0.9)
    other = _run("fedray", 10, [4.0, 0.5, 0.6], 0.7, 300, total=10.0)
    fig = side_figures([run, other])
    assert fig.round_s == pytest.approx(0.4)  # median of 0.2, 0.4, 0.3, 0.5, 0.6
    assert fig.first_round_s == pytest.approx(4.5)
    assert fig.accuracy == pytest.approx(0.8)
    assert fig.peak_rss == 300 and fig.runs == 2


def test_the_worse_of_each_figure_reaches_the_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    runs = [
        _run("fedray", 10, [9.0, 0.2, 0.2], 0.50, 3 * 2**30, 10.0),
        _run("flower", 10, [9.0, 0.4, 0.4], 0.52, 2 * 2**30, 10.0),
        _run("fedray", 100, [9.0, 0.9, 0.9], 0.90, 4 * 2**30, 10.0),
        _run("flower", 100, [9.0, 0.6, 0.6], 0.88, 1 * 2**30, 10.0),
    ]
    result = compare(runs)
    assert result.ratio == pytest.approx(1.5)  # 0.9 / 0.6, worse than 0.2 / 0.4
    assert result.rss_ratio == pytest.approx(2.0)  # largest peaks: 4 GiB against 2 GiB
    assert result.acc_delta == pytest.approx(-0.02)  # 0.50 - 0.52, worse than +0.02
    lines = result.lines()
    assert lines[-1] == "ratio=1.50 rss_ratio=2.00 acc_delta=-0.0200"
    assert LAST_LINE.match(lines[-1])
    assert "per_round=10 ratio=0.50" in lines and "per_round=100 ratio=1.50" in lines


def test_the_last_line_signs_the_accuracy_difference() -> None:
    assert last_line(0.456, 1.0, 0.01) == "ratio=0.46 rss_ratio=1.00 acc_delta=+0.0100"
    assert LAST_LINE.match(last_line(12.0, 0.5, -0.25))


def test_a_setting_with_one_side_missing_is_refused() -> None:
    with pytest.raises(BenchRoundError, match="a side has no run"):
        compare([_run("fedray", 10, [1.0, 0.2], 0.5, 1, 5.0)])
    with pytest.raises(BenchRoundError, match="fewer than two rounds"):
        side_figures([_run("flower", 10, [1.0], 0.5, 1, 5.0)])


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_the_memory_of_a_child_process_is_counted() -> None:
    alone = tree_rss(os.getpid())
    assert alone > 0
    child = subprocess.Popen(
        [sys.executable, "-c", "b = b'x' * (200 * 2**20); import time; time.sleep(30)"]
    )
    try:
        deadline = time.monotonic() + 15
        while tree_rss(os.getpid()) < alone + 150 * 2**20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tree_rss(os.getpid()) >= alone + 150 * 2**20
        assert tree_rss(child.pid) >= 150 * 2**20
    finally:
        child.kill()
        child.wait()


def test_without_flower_the_command_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m == "flwr" or m.startswith("flwr.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "flwr", None)  # what an environment without flwr imports
    assert fedray_main(["bench", "round", "--rounds", "2"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    err = out.err.strip().splitlines()
    assert len(err) == 1 and "Flower cannot be imported" in err[0], err
