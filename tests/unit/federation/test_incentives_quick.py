"""`experiments/incentives.py --quick`: the subset runs through the product's rounds, writes run
directories and the report, and its figures hold the issue's targets on that subset."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_quick_grid_writes_runs_and_report(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "experiments"))
    inc = load("incentives")
    inc.main(
        ["--quick", "--out", str(tmp_path), "--runs", str(tmp_path / "runs"), "--workers", "2"]
    )
    records = [
        json.loads(x)
        for x in (tmp_path / "incentives" / "results.jsonl").read_text().split("\n")
        if x
    ]
    assert len(records) == len(inc.quick_grid())
    for r in records:  # no honest client is ever slashed or jailed
        assert not r["honest_slashed"] and not r["honest_jailed"], r["cell"]
    by = {(r["cell"]["partition"], r["cell"]["attack"], r["cell"]["rule"]): r for r in records}
    for part in ("iid", "dir0.1"):  # provable misbehaviour is caught whatever the skew
        for attack in ("alie", "ipm", "free_rider", "free_rider_noise", "gaussian", "replay"):
            r = by[(part, attack, "default")]
            assert r["caught_in_5"] == r["attackers"], (part, attack)
    for attack in ("sign_flip", "scaling", "label_flip"):  # not slashed: they earn less instead
        r = by[("iid", attack, "default")]
        assert not r["caught_in_5"]
        earned = r["earned"]
        bad = [earned[i] for i in r["attackers"]]
        good = [e for i, e in enumerate(earned) if i not in r["attackers"]]
        assert sum(bad) / len(bad) < sum(good) / len(good), attack
    # every run directory holds what the tables are computed from, and recomputes to its record
    run = tmp_path / "runs" / inc.Cell("digits", "iid", "sign_flip", rounds=8).key
    assert json.loads((run / "summary.json").read_text())["attackers"]
    assert inc.summarize_run(run) == by[("iid", "sign_flip", "default")] | {
        "seconds": inc.summarize_run(run)["seconds"]
    }
    text = (tmp_path / "incentives.md").read_text()
    assert (
        "Honest clients slashed or jailed" in text
        and (tmp_path / "incentives" / "caught.png").exists()
    )
