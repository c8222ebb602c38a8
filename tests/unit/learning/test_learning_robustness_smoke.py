"""Smoke test of experiments/robustness.py on tiny settings (the same code path as --quick)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from fedray.learning.training import TrainConfig

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def rb():
    spec = importlib.util.spec_from_file_location("robustness", ROOT / "experiments/robustness.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["robustness"] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def _cfg(rb, rule, attack, **kw):
    base = dict(num_clients=10, rounds=6, train=TrainConfig(epochs=1, batch_size=10))
    return rb.RunConfig("digits", "mlp", "iid", rule, attack, **{**base, **kw})


def test_run_learns_and_is_deterministic(rb):
    a, b = rb.run(_cfg(rb, "fedavg", "none")), rb.run(_cfg(rb, "fedavg", "none"))
    assert a.curve == b.curve and a.accuracy == b.accuracy
    assert len(a.curve) == 6 and a.diverged_at is None
    assert a.accuracy > 0.8 and a.curve[-1] > a.curve[0]


def test_fedavg_collapses_under_sign_flip_but_centered_clipping_holds(rb):
    clean = rb.run(_cfg(rb, "fedavg", "none")).accuracy
    broken = rb.run(_cfg(rb, "fedavg", "sign_flip"))
    held = rb.run(_cfg(rb, "cc", "sign_flip"))
    assert broken.accuracy < 0.3
    assert held.accuracy > clean - 0.1


def test_main_writes_table_json_and_heatmap(rb, tmp_path):
    rb.main(
        [
            "--quick",
            "--rules",
            "fedavg",
            "cc",
            "--attacks",
            "none",
            "ipm",
            "--out",
            str(tmp_path),
        ]
    )
    table = (tmp_path / "table.md").read_text()
    assert "digits (mlp), iid" in table and "digits (mlp), dir0.5" in table
    assert "| fedavg |" in table and "| cc |" in table and "Centralized baselines" in table
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["runs"]) == 2 * 2 * 2  # partitions x attacks x rules
    assert all(0 <= r["accuracy"] <= 1 for r in data["runs"])
    png = (tmp_path / "heatmap.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
