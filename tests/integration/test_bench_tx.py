"""`fedray bench tx` on the session's local Ray cluster, with a tiny load: every transfer submitted
through the ingresses is committed, the figures are consistent with each other, and the last line
has the form `tx/s=<float> limit=<float> ratio=<float>`."""

from __future__ import annotations

import re

import pytest

from fedray.cli import main as fedray_main
from fedray.runtime.tx_bench import run

LAST_LINE = re.compile(r"^tx/s=(\d+\.\d+) limit=(\d+\.\d+) ratio=(\d+\.\d+)$")


@pytest.mark.usefixtures("ray_cluster")
def test_a_tiny_load_is_committed_in_full(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(validators=4, accounts=40, txs=300, batch=50, seconds=90)
    assert result.submitted == result.admitted == result.committed == 300
    assert result.blocks >= 1 and result.seconds > 0
    assert result.gas > 300 * 1000  # a transfer's base gas, plus its bytes
    assert 0 < result.latency_p50_ms <= result.latency_p99_ms
    assert result.verify_per_s > 0 and result.cores >= 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    m = LAST_LINE.match(last)
    assert m is not None, last
    tx_s, limit, ratio = (float(g) for g in m.groups())
    assert tx_s == pytest.approx(result.tx_per_s, abs=0.1)
    assert limit == pytest.approx(result.cores * result.verify_per_s / 4, abs=0.1)
    assert ratio == pytest.approx(tx_s / limit, abs=1e-3)


@pytest.mark.usefixtures("ray_cluster")
def test_the_command_line_runs_it(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "tx", "--validators", "4", "--accounts", "8", "--txs", "16", "--batch", "4"]
    assert fedray_main([*argv, "--seconds", "60"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    assert lines[0].startswith("validators=4 submitted=16 admitted=16 committed=16 ")
