"""`fedray bench scale` without Ray: the task maps onto `fedray run`'s config, the figures are
folded from the runs as documented, the last line has its exact form, and the memory sampler
puts each process under its kind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from fedray.cli import build_parser
from fedray.config import load_config
from fedray.errors import ConfigError
from fedray.runtime.scale_bench import (
    Sample,
    ScaleRun,
    ScaleTask,
    cpu_per_round,
    last_line,
    population_figures,
    rss_by_kind,
    summarize,
)

LAST_LINE = re.compile(r"^rss_gib=\d+\.\d\d round_ratio=\d+\.\d\d$")


def _run(
    clients: int, rounds: list[float], total: float, rss: int = 0, acc: float = 0.5
) -> ScaleRun:
    walls, t = [], 0.0
    for r in rounds:
        t += r
        walls.append(t)
    return ScaleRun(clients, total, walls, acc, rss, {"pools": rss})


def test_the_task_is_a_fedray_run_of_the_population_with_the_chain_on(tmp_path: object) -> None:
    cfg = load_config(None, ScaleTask(10_000).overrides(str(tmp_path)))
    assert (cfg.clients, cfg.chain.clients_per_round, cfg.chain.validators) == (10_000, 100, 4)
    assert (cfg.data.name, cfg.data.partition) == ("synthetic_users", "natural")
    assert cfg.runtime.address is None and cfg.runtime.client_pools == 2
    assert cfg.rounds == 5 and cfg.baseline is False and cfg.runtime.object_store_mb <= 200


def test_a_task_needs_two_rounds_and_no_more_selected_than_registered() -> None:
    with pytest.raises(ConfigError):
        ScaleTask(100, rounds=1)
    with pytest.raises(ConfigError):
        ScaleTask(50, per_round=100)


def test_round_time_is_the_median_of_every_round_but_each_runs_first() -> None:
    a = _run(1000, [9.0, 1.0, 3.0, 2.0], total=40.0, rss=3 * 2**30)
    b = _run(1000, [8.0, 4.0, 5.0, 6.0], total=50.0, rss=2 * 2**30)
    assert a.rounds_s == pytest.approx([9.0, 1.0, 3.0, 2.0])
    assert a.startup_s == pytest.approx(40.0 - 6.0)
    f = population_figures([a, b])
    assert f.round_s == pytest.approx(3.5)  # median of 1, 3, 2, 4, 5, 6
    assert f.first_round_s == pytest.approx(8.5) and f.startup_s == pytest.approx(34.5)
    assert f.peak_rss == 3 * 2**30 and f.peak_by_kind == {"pools": 3 * 2**30} and f.runs == 2


def test_the_last_line_compares_the_largest_population_with_the_smallest() -> None:
    runs = [
        _run(10_000, [5.0, 1.5, 1.5], total=30.0, rss=int(3.5 * 2**30)),
        _run(100, [5.0, 1.0, 1.0], total=20.0, rss=1 * 2**30),
        _run(1000, [5.0, 9.0, 9.0], total=20.0, rss=9 * 2**30),
    ]
    figures = summarize(runs)
    assert [f.clients for f in figures] == [100, 1000, 10_000]
    line = last_line(figures)
    assert LAST_LINE.match(line) and line == "rss_gib=3.50 round_ratio=1.50"
    assert "clients=10000 runs=1 " in figures[-1].line() and "pools_gib=3.50" in figures[-1].line()


def test_the_sampler_counts_each_process_under_its_kind() -> None:
    # A child whose command line names a validator actor's class, as Ray's actor processes do.
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; time.sleep(30)", "ray::ValidatorService"]
    )
    try:
        deadline = time.monotonic() + 10
        while "validators" not in (sample := rss_by_kind(os.getpid())):
            assert time.monotonic() < deadline, sample
            time.sleep(0.05)
        assert sample["driver"] > 10 * 2**20 and sample["validators"] > 2**20
        assert set(sample) <= {"driver", "validators", "ingress", "pools", "ray"}
    finally:
        child.kill()
        child.wait()


def test_the_command_line_takes_comma_separated_populations() -> None:
    args = build_parser().parse_args(["bench", "scale", "--clients", "50,100", "--repeats", "2"])
    assert args.clients == [50, 100] and args.repeats == 2 and args.per_round == 100
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "scale", "--clients", "50,x"])


def test_cpu_per_round_is_the_cpu_between_the_first_and_the_last_close_over_the_rounds() -> None:
    samples = [
        Sample(10.0, {}, {"pools": 1.0, "validators": 2.0}),
        Sample(20.0, {}, {"pools": 3.0, "validators": 5.0}),  # last at or before the first close
        Sample(30.0, {}, {"pools": 7.0, "validators": 6.0}),
        Sample(40.0, {}, {"pools": 9.0, "validators": 11.0}),  # last at or before the last close
        Sample(50.0, {}, {"pools": 99.0, "validators": 99.0}),  # after it: the shutdown
    ]
    cpu = cpu_per_round(samples, [21.0, 30.5, 41.0])  # three closes: two rounds after the first
    assert cpu == pytest.approx({"pools": 3.0, "validators": 3.0})
    assert cpu_per_round(samples, [21.0]) == {}  # one round: nothing after the first
    assert cpu_per_round(samples[3:], [21.0, 41.0]) == {}  # no sample before the first close
