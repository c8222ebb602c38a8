"""`fedray bench round`'s sides with tiny settings: fedray's side through `fedray run`'s own path on
the session's Ray cluster (chain on, 4 validators) runs every round and learns; Flower's side
(its own process and Ray, so slow) only where the bench extra is installed. Every client trains
in every round, so neither side's accuracy depends on a draw of clients."""

from __future__ import annotations

import statistics

import pytest

from fedray.runtime.round_bench import RoundTask, flower_missing, run_side, side_figures
from fedray.runtime.round_bench_side import run_fedray


@pytest.mark.usefixtures("ray_cluster")
def test_fedray_runs_every_round_of_the_task_and_learns() -> None:
    run = run_fedray(RoundTask(per_round=100, rounds=3))
    assert run.side == "fedray" and run.per_round == 100
    assert len(run.rounds_s) == 3 and all(s > 0 for s in run.rounds_s)
    assert run.boundaries == sorted(run.boundaries)
    assert run.total_s >= sum(run.rounds_s)
    assert 0.15 < run.accuracy <= 1.0  # above chance (0.1) after three rounds of every client
    assert side_figures([run]).round_s == pytest.approx(statistics.median(run.rounds_s[1:]))


@pytest.mark.slow
@pytest.mark.skipif(flower_missing() is not None, reason="flwr (the bench extra) not installed")
def test_flower_runs_the_same_task_in_its_own_process() -> None:
    run = run_side("flower", RoundTask(per_round=100, rounds=3), timeout_s=300)
    assert len(run.rounds_s) == 3 and run.boundaries == sorted(run.boundaries)
    assert 0.15 < run.accuracy <= 1.0
    assert run.peak_rss > 200 * 2**20  # the driver, Ray's GCS and raylet, two actors
