"""`fedray bench scale` end to end with tiny populations: each population runs `fedray run`'s own
path in its own process (its own embedded Ray, the chain on, 4 validators), every round is timed,
the memory of every process of the run is sampled by kind, and the last line has its form."""

from __future__ import annotations

import re

import pytest

from fedray.cli import main as fedray_main


@pytest.mark.slow
def test_bench_scale_runs_each_population_and_prints_the_last_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "scale", "--clients", "50,100", "--per-round", "10", "--rounds", "3"]
    assert fedray_main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"rss_gib=\d+\.\d\d round_ratio=\d+\.\d\d", lines[-1])
    for n in (50, 100):
        (figures,) = [line for line in lines if line.startswith(f"clients={n} runs=1 ")]
        fields = dict(item.split("=") for item in figures.split())
        assert float(fields["round_s"]) > 0 and float(fields["startup_s"]) > 0
        # every kind of process was alive at the peak: driver, Ray, 4 validators and ingresses,
        # 2 client pools
        for kind in ("driver", "validators", "ingress", "pools", "ray"):
            assert float(fields[f"{kind}_gib"]) > 0.01, (kind, figures)
        assert 0.0 <= float(fields["accuracy"]) <= 1.0
