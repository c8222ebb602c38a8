"""experiments/inversion_attack.py against fedray's own update: a one-step update of one 8x8 digit
gives the digit back (iDLG), and the same update through `privatize` with local-DP noise does not."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fedray.learning.datasets import load_digits
from fedray.learning.dp import privatize
from fedray.learning.models import ModelSpec, build_model, get_params, set_params
from fedray.learning.training import TrainConfig, train_local

ROOT = Path(__file__).resolve().parents[3]
LR = 0.1


def _load_attack():  # type: ignore[no-untyped-def]
    name = "inversion_attack"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses resolve annotations through sys.modules
        spec.loader.exec_module(mod)
    return sys.modules[name]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    split = load_digits(seed=0)
    model = build_model(ModelSpec("mlp", (1, 8, 8), 10, hidden=64), seed=0)
    global_params = get_params(model)
    digit = split.train.subset(np.array([3]))
    cfg = TrainConfig(epochs=1, batch_size=1, lr=LR, momentum=0.9)
    delta = train_local(model, global_params, digit, cfg, seed=0).delta
    return model, global_params, digit, delta


def _attack(model, global_params, delta):  # type: ignore[no-untyped-def]
    inv = _load_attack()
    set_params(model, global_params)
    target = inv.implied_gradient(delta, list(global_params), LR)
    cfg = inv.AttackConfig(iterations=300, restarts=1)
    return inv.invert(model, target, 1, (1, 8, 8), 10, cfg, seed=0)


def test_one_step_update_of_one_digit_is_inverted(setup) -> None:  # type: ignore[no-untyped-def]
    model, global_params, digit, delta = setup
    rec = _attack(model, global_params, delta)
    assert rec.labels.tolist() == digit.y.tolist()  # iDLG reads the label off the last layer
    assert _psnr(digit.x, rec.images) > 25.0


def test_local_dp_noise_leaves_only_noise(setup) -> None:  # type: ignore[no-untyped-def]
    model, global_params, digit, delta = setup
    rng = np.random.default_rng(0)
    noisy, norm = privatize(delta, 0.05, 1.0 * 0.05, rng)  # z = 1, clipping active
    assert norm > 0.05
    rec = _attack(model, global_params, noisy)
    # below even the mean training digit (about 11 dB): the noise, not the digit, was matched
    assert _psnr(digit.x, rec.images) < 10.0


def test_batch_scored_under_its_best_matching() -> None:
    inv = _load_attack()
    rng = np.random.default_rng(0)
    originals = rng.random((8, 1, 8, 8)).astype(np.float32)
    perm = rng.permutation(8)
    recons = originals[perm] + np.float32(0.01)
    matched = inv.match_batch(originals, recons)
    assert np.array_equal(perm[matched], np.arange(8))
    torch.testing.assert_close(
        torch.from_numpy(recons[matched]), torch.from_numpy(originals + 0.01)
    )


@pytest.mark.slow
def test_quick_run_writes_report(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "experiments"))
    _load_attack()
    spec = importlib.util.spec_from_file_location(
        "gradient_inversion", ROOT / "experiments" / "gradient_inversion.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gradient_inversion"] = mod
    spec.loader.exec_module(mod)
    payload = mod.main(["--quick", "--out", str(tmp_path)])
    assert {p.name for p in tmp_path.iterdir()} == {
        "inversion.md",
        "inversion_results.json",
        "inversion_examples.png",
    }
    by = {r["condition"]["name"]: r for r in payload["results"]}
    assert by["nodp_bs1"]["psnr_mean"] > 25.0 > 10.0 > by["dp_bs1"]["psnr_mean"]
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("psnr_nodp_bs1=") and "ssim_dp_bs1=" in last
