"""`fedray run privacy=local` end to end on the shared local Ray cluster (minimal preset): the
chain's budget stops the run cleanly once no client may take part, summary.json reports an
epsilon spent within the target, and `fedray chain show --accounts` shows each client's budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedray.cli import main as cli_main
from fedray.config import load_config
from fedray.runtime.launch import run

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "fedray" / "conf" / "preset" / "minimal.yaml"


def test_local_dp_run_spends_within_its_budget_and_stops_when_it_is_spent(
    ray_cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # z = 3 buys two participations within epsilon 2.2 (2.03, then 2.54): every client takes
    # part in every round of the minimal preset, so the budget is spent after round 1 of 4
    cfg = load_config(
        MINIMAL,
        [
            f"output_dir={tmp_path}",
            "rounds=4",
            "privacy=local",
            "privacy.epsilon=2.2",
            "privacy.noise_multiplier=3.0",
        ],
    )
    result = run(cfg)
    privacy = result.summary["privacy"]
    assert privacy["mode"] == "local" and privacy["epsilon_target"] == 2.2
    assert 2.0 < privacy["epsilon_spent"] <= privacy["epsilon_target"]
    assert privacy["budget_spent_after_round"] == 1 and result.summary["rounds"] == 2
    assert result.summary["economy"]["penalties"] == {}  # honest noisy updates: no penalty
    capsys.readouterr()
    assert cli_main(["chain", "show", str(result.run_dir), "--accounts"]) == 0
    shown = capsys.readouterr().out
    assert "eps left" in shown and "no client can take part any more" in shown
    clients = [line for line in shown.splitlines() if line.startswith("client-")]
    assert len(clients) == 6 and all(
        line.split()[-3:] == ["2.029", "0.171", "2"] for line in clients
    )
