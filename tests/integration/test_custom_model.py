"""`examples/custom_model/config.yaml` on the shared local Ray cluster: a model, a data set and an
aggregation rule of the user's, named by import path, resolve in the client pools and on every
validator (which aggregate with the custom rule), the BatchNorm statistics reach the global model,
the run learns, and `fedray chain verify --recompute` replays the custom rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.numpy import load_file

from fedray.cli import main as cli_main
from fedray.config import load_config
from fedray.runtime.launch import run

ROOT = Path(__file__).resolve().parents[2]


def test_the_custom_model_example_trains(
    ray_cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The example's python_path is relative to the working directory: the repository root, as in
    # `fedray run examples/custom_model/config.yaml`. Ray's workers got this process's working
    # directory when the session cluster started; they are told the directory absolutely here,
    # so the test holds wherever pytest was started.
    monkeypatch.chdir(ROOT)
    cfg = load_config(
        "examples/custom_model/config.yaml",
        [
            "rounds=2",
            f"output_dir={tmp_path}",
            "runtime.progress=false",
            f"python_path=[{ROOT / 'examples' / 'custom_model'}]",
        ],
    )
    result = run(cfg)
    s = result.summary
    assert s["finished"] and s["rounds"] == 2
    assert s["final_accuracy"] > s["initial_accuracy"] + 0.3
    model = load_file(str(result.run_dir / "model.safetensors"))
    assert {"1.running_mean", "1.running_var", "5.running_mean"} <= set(model)
    assert abs(model["1.running_mean"]).max() > 0  # aggregated statistics, not the initial zeros
    assert cli_main(["chain", "verify", str(result.run_dir), "--recompute"]) == 0
