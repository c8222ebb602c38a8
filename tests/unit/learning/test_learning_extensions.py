"""Models, data sets and attacks by import path keep their protocols (a wrong return is an
`ExtensionTypeError` naming the key), and BatchNorm statistics are model state: they travel in
`Params`, move with local training, and are aggregated with the parameters, while the integer
num_batches_tracked stays out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from fedray.aggregation.base import ClientDelta
from fedray.aggregation.fixedpoint import SCALE, quantize
from fedray.aggregation.round import aggregate_round
from fedray.importpath import ExtensionTypeError
from fedray.learning.attacks import Attack, AttackContext, AttackResult
from fedray.learning.datasets import Dataset, DataSplit
from fedray.learning.extensions import load_custom_dataset, make_custom_attack
from fedray.learning.models import ModelSpec, build_model, get_params, set_params, state_names
from fedray.learning.training import TrainConfig, train_local

HERE = __name__  # this module is importable by its name: factories below are named by path


def bn_model(input_shape: tuple[int, ...], num_classes: int, width: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(input_shape[0], width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(width * input_shape[1] * input_shape[2], num_classes),
    )


def not_a_module(input_shape: tuple[int, ...], num_classes: int) -> object:
    return {"weight": np.zeros(3)}


def double_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Linear(int(np.prod(input_shape)), num_classes).double()


def frozen_model(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Linear(int(np.prod(input_shape)), num_classes).requires_grad_(False)


def images(n: int, seed: int, shift: float = 0.0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = (rng.normal(shift, 1.0, (n, 1, 4, 4))).astype(np.float32)
    return Dataset(x, (x.mean(axis=(1, 2, 3)) > shift).astype(np.int64), 2)


def split_loader(seed: int, test_fraction: float, n: int = 40) -> DataSplit:
    return DataSplit("blobs", images(n, seed), images(max(2, int(n * test_fraction)), seed + 1))


def wrong_loader(seed: int, test_fraction: float) -> object:
    return images(10, seed)


def mismatched_loader(seed: int, test_fraction: float) -> DataSplit:
    test = Dataset(np.zeros((4, 16), np.float32), np.zeros(4, np.int64), 2)
    return DataSplit("bad", images(10, seed), test)


@dataclass(frozen=True)
class ZeroAttack(Attack):
    scale: float = 0.0
    name: ClassVar[str] = "zero"
    needs_training: ClassVar[bool] = False

    def craft(self, ctx: AttackContext) -> AttackResult:
        zero = {k: np.zeros_like(v) for k, v in ctx.global_params.items()}
        return AttackResult(tuple(zero for _ in ctx.attackers))


def spec(factory: str, **params: object) -> ModelSpec:
    return ModelSpec(
        "custom", (1, 4, 4), 2, factory=f"{HERE}:{factory}", params=tuple(params.items())
    )


def test_a_factory_model_builds_seeded_with_its_params() -> None:
    a, b = (get_params(build_model(spec("bn_model", width=3), 7)) for _ in range(2))
    assert a["1.weight"].shape == (3,)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = get_params(build_model(spec("bn_model", width=3), 8))
    assert not np.array_equal(a["0.weight"], c["0.weight"])


@pytest.mark.parametrize(
    ("factory", "why"),
    [
        ("not_a_module", "not a torch.nn.Module"),
        ("double_model", "float64"),
        ("frozen_model", "no trainable"),
    ],
)
def test_a_factory_that_breaks_the_protocol_is_refused(factory: str, why: str) -> None:
    with pytest.raises(ExtensionTypeError, match=why):
        build_model(spec(factory))


def test_a_loader_split_is_checked() -> None:
    split = load_custom_dataset(f"{HERE}:split_loader", 0, 0.25, {"n": 20})
    assert len(split.train) == 20 and len(split.test) == 5
    with pytest.raises(ExtensionTypeError, match="not a DataSplit"):
        load_custom_dataset(f"{HERE}:wrong_loader", 0, 0.2, {})
    with pytest.raises(ExtensionTypeError, match="differ in shape"):
        load_custom_dataset(f"{HERE}:mismatched_loader", 0, 0.2, {})


def test_an_attack_factory_must_return_an_attack() -> None:
    attack = make_custom_attack(f"{HERE}:ZeroAttack", {"scale": 2.0})
    assert isinstance(attack, ZeroAttack) and attack.scale == 2.0
    with pytest.raises(ExtensionTypeError, match="not a fedray.learning.attacks.Attack"):
        make_custom_attack(f"{HERE}:images", {"n": 3, "seed": 0})


def test_params_hold_float_buffers_after_parameters_and_no_counters() -> None:
    model = build_model(spec("bn_model"))
    names = state_names(model)
    assert names[-2:] == ["1.running_mean", "1.running_var"]
    assert "1.num_batches_tracked" not in names and "1.num_batches_tracked" in model.state_dict()
    params = get_params(model)
    params["1.running_var"] = np.full(4, 3.0, np.float32)
    set_params(model, params)
    assert torch.equal(model[1].running_var, torch.full((4,), 3.0))
    with pytest.raises(Exception, match="names differ"):
        set_params(model, {k: v for k, v in params.items() if k != "1.running_mean"})


def test_batchnorm_statistics_are_aggregated_with_the_parameters() -> None:
    """Two clients whose inputs differ in mean: each update moves running_mean its own way, and
    the round's new global running_mean is the sample-weighted mean of the clients' (FedAvg)."""
    model = build_model(spec("bn_model"))
    global_float = get_params(model)
    cfg = TrainConfig(epochs=1, batch_size=8, lr=0.05)
    shards = [images(24, 1, shift=-2.0), images(40, 2, shift=3.0)]
    updates = [train_local(model, global_float, d, cfg, seed=i) for i, d in enumerate(shards)]
    local_means = []
    for u in updates:
        assert np.abs(u.delta["1.running_mean"]).max() > 0.1  # training moved the statistics
        local_means.append(global_float["1.running_mean"] + u.delta["1.running_mean"])
    assert np.all(local_means[0] != local_means[1])
    global_fixed = quantize(global_float)
    deltas = [
        ClientDelta(bytes([i]), quantize(u.delta), u.n_samples) for i, u in enumerate(updates)
    ]
    new = aggregate_round(global_fixed, deltas, "fedavg").new_global
    expected = (24 * local_means[0] + 40 * local_means[1]) / 64
    got = new["1.running_mean"].astype(np.float64) / SCALE
    np.testing.assert_allclose(got, expected, atol=4 / SCALE)
    assert set(new) == set(global_float)  # no integer counter reached the chain
