"""Smoke test of experiments/robustness.py on tiny settings (the same code path as --quick)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def rb():
    spec = importlib.util.spec_from_file_location("robustness", ROOT / "experiments/robustness.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["robustness"] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def _cell(rb, rule, attack, **kw):
    base = {"dataset": "digits", "partition": "iid", "clients": 10, "rounds": 6, "epochs": 1}
    return rb.Cell(rule=rule, attack=attack, **{**base, **kw})


def test_a_cell_is_the_product_config_with_its_keys(rb):
    cfg = _cell(rb, "dfn_cc", "sign_flip", partition="dir0.1").run_config()
    assert cfg.strategy.name == "direction_filter" and cfg.strategy.params["norm_ratio"] == 3.0
    assert cfg.attack.name == "sign_flip" and cfg.attack.params["scale"] == 10.0
    assert cfg.attack.fraction == 0.2 and cfg.data.alpha == 0.1
    assert cfg.training.lr == 0.1 and cfg.model.hidden == 64  # fedray run's defaults


def test_run_learns_and_is_deterministic(rb):
    a, b = rb.run(_cell(rb, "fedavg", "none")), rb.run(_cell(rb, "fedavg", "none"))
    assert a.curve == b.curve and a.accuracy == b.accuracy
    assert len(a.curve) == 6 and a.diverged_at is None
    assert a.accuracy > 0.8 and a.curve[-1] > a.curve[0]


def test_fedavg_collapses_under_sign_flip_but_the_default_rule_holds(rb):
    clean = rb.run(_cell(rb, "fedavg", "none")).accuracy
    broken = rb.run(_cell(rb, "fedavg", "sign_flip"))
    held = rb.run(_cell(rb, "dfn_cc", "sign_flip"))
    assert broken.accuracy < 0.3
    assert held.accuracy > clean - 0.1


def test_krum_without_enough_updates_falls_back_to_the_median(rb):
    out = rb.run(_cell(rb, "krum", "none", clients=5, rounds=2))  # K = 5 < 2f + 3 = 11
    assert out.fallback_rounds == 2


def test_main_writes_table_json_and_heatmap_and_replots(rb, tmp_path):
    argv = ["--quick", "--rules", "fedavg", "cc", "--attacks", "none", "ipm"]
    rb.main([*argv, "--partitions", "iid", "dir0.5", "--out", str(tmp_path)])
    table = (tmp_path / "table.md").read_text()
    assert "digits, iid" in table and "digits, dir0.5" in table
    assert "| fedavg |" in table and "| cc |" in table and "Centralized baselines" in table
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["runs"]) == 2 * 2 * 2  # partitions x attacks x rules
    assert all(0 <= r["accuracy"] <= 1 for r in data["runs"])
    png = (tmp_path / "heatmap.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    (tmp_path / "table.md").unlink()
    rb.main(["--replot", "--out", str(tmp_path)])
    assert (tmp_path / "table.md").read_text() == table


def test_the_default_rule_row_is_what_fedray_run_uses(rb):
    from fedray.aggregation.registry import make_config
    from fedray.config import load_config

    cfg = load_config(None, [])
    name, params = rb.RULES[rb.DEFAULT_RULE]
    assert make_config(name, params) == make_config(cfg.strategy.name, cfg.strategy.params)
