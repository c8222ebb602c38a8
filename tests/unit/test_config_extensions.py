"""Config keys of the extension points: the example config loads from the repository root and its
federation builds; bad import paths and names are one `ConfigError` at load time; client pools'
GPUs are checked before Ray starts, and pools train on CPU without a GPU."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fedray.aggregation import extensions
from fedray.config import load_config
from fedray.errors import ConfigError
from fedray.federation.plan import Federation
from fedray.learning.datasets import Dataset, DataSplit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "examples/custom_model/config.yaml"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """From the repository root; sys.path, the example's modules and custom rules restored."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(extensions, "_CUSTOM", {})
    yield
    for name in [m for m in sys.modules if m.split(".")[0] == "custom_model"]:
        del sys.modules[name]


def test_the_example_config_builds_its_model_data_and_rule_from_the_working_directory() -> None:
    fed = Federation(load_config(EXAMPLE))
    fed.preflight()
    assert fed.params().fl_rule == "drop_largest"
    assert extensions.custom_names() == ["drop_largest"]
    initial = fed.initial_model()
    assert {"1.running_mean", "1.running_var", "5.running_var"} <= set(initial)
    assert not any(name.endswith("num_batches_tracked") for name in initial)
    split = fed.split()
    assert split.name == "digits10_standardized" and split.train.input_shape == (1, 8, 8)
    assert abs(float(split.train.x.mean())) < 1e-4  # the loader's own transform ran


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.factory=custom_model.model:nope", "model.factory"),
        ("data.loader=custom_model.nothing:load", "data.loader"),
        ("data.loader=custom_model/data.py", "data.loader"),
        ("strategy.factory=custom_model.rules:Missing", "strategy.factory"),
        ("strategy.name=fedavg", "strategy.name"),
        ("strategy.params.dorp=1", "strategy"),
        ("attack.factory=custom_model.data:load", "attack"),
        ("python_path=[examples/nowhere]", "python_path"),
    ],
)
def test_a_bad_extension_is_one_config_error_naming_its_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(EXAMPLE, [override])


def test_an_attack_factory_makes_attackers_whatever_the_attack_name() -> None:
    cfg = load_config(
        EXAMPLE,
        [
            "attack.factory=fedray.learning.attacks:SignFlip",
            "attack.fraction=0.25",
        ],
    )
    assert cfg.attack.name == "none"
    fed = Federation(cfg)
    assert len(fed.attackers()) == 2 and len(fed.pools()) == 2


@pytest.mark.parametrize(("gpus", "ok"), [(0.0, True), (0.25, True), (2.0, True), (1.5, False)])
def test_pool_num_gpus_is_a_fraction_or_whole(gpus: float, ok: bool) -> None:
    if ok:
        assert load_config(None, [f"runtime.pool_num_gpus={gpus}"]).runtime.pool_num_gpus == gpus
    else:
        with pytest.raises(ConfigError, match="runtime.pool_num_gpus"):
            load_config(None, [f"runtime.pool_num_gpus={gpus}"])
    with pytest.raises(ConfigError, match="runtime.pool_num_gpus"):
        load_config(None, ["runtime.pool_num_gpus=-0.5"])


def test_gpus_nobody_has_are_refused_before_ray_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fedray.runtime import cluster, launch

    def no_ray(*args: object, **kwargs: object) -> bool:
        raise AssertionError("Ray was started")

    monkeypatch.setattr(launch, "_machine_gpus", lambda: 0)
    monkeypatch.setattr(cluster, "init_ray", no_ray)  # a missed check fails here, not hangs
    cfg = load_config(
        ROOT / "fedray/conf/preset/minimal.yaml",
        ["runtime.pool_num_gpus=0.5", f"output_dir={tmp_path}/runs"],
    )
    with pytest.raises(ConfigError, match=r"runtime\.pool_num_gpus.*0\.5 GPUs.*has 0"):
        launch.run(cfg)
    assert not (tmp_path / "runs").exists()  # and init_ray above was never called


def test_a_pool_without_a_gpu_trains_on_cpu() -> None:
    import torch

    from fedray.federation.clients import ClientPool

    cfg = load_config(EXAMPLE, ["runtime.pool_num_gpus=0.5"])
    pool = ClientPool(cfg, [0, 1])
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert pool.device.type == want
    assert all(p.device.type == want for p in pool.model.parameters())
    assert ClientPool(load_config(EXAMPLE), [0]).device.type == "cpu"
    assert np.isfinite(pool.shards[0].x).all()


def grouped_loader(seed: int, test_fraction: float, users: int = 3) -> DataSplit:
    """Each sample belongs to one of `users` natural owners (its group)."""
    rng = np.random.default_rng(seed)

    def part(n: int) -> Dataset:
        x = rng.normal(size=(n, 6)).astype(np.float32)
        groups = np.arange(n, dtype=np.int64) % users
        return Dataset(x, (x[:, 0] > 0).astype(np.int64), 2, groups)

    return DataSplit("grouped", part(60), part(12))


def test_a_loader_with_groups_defines_a_natural_partition() -> None:
    loader = [f"data.loader={__name__}:grouped_loader", "data.partition=natural"]
    fed = Federation(load_config(None, [*loader, "clients=3"]))
    fed.preflight()
    shards = fed.shards()
    assert [len(s) for s in shards.values()] == [20, 20, 20]
    assert all(len(set(s.groups.tolist())) == 1 for s in shards.values())
    with pytest.raises(ConfigError, match="natural partition of grouped has 3 clients, not 4"):
        Federation(load_config(None, [*loader, "clients=4"])).preflight()
