"""Run configuration: defaults equal conf/default.yaml, groups and presets load, and every kind of
mistake names the key and the closest valid ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fedray.config import RunConfig, load_config, to_yaml
from fedray.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def test_default_yaml_equals_dataclass_defaults() -> None:
    on_disk = OmegaConf.to_container(OmegaConf.load(CONF / "default.yaml"))
    assert on_disk == OmegaConf.to_container(OmegaConf.create(to_yaml(RunConfig())))
    assert load_config(CONF / "default.yaml") == load_config()


@pytest.mark.parametrize(
    "path", sorted(CONF.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONF))
)
def test_every_shipped_yaml_loads(path: Path) -> None:
    group = path.parent.name
    if group in ("strategy", "attack", "data"):
        extra = ["clients=30"] if path.stem == "synthetic" else []  # 30 natural users
        cfg = load_config(None, [f"{group}={path.stem}", *extra])
        if group != "data":
            assert getattr(cfg, group).name == path.stem
    else:
        load_config(path)


def test_preset_and_overrides_compose() -> None:
    cfg = load_config(
        CONF / "preset" / "minimal.yaml", ["rounds=3", "strategy=krum", "strategy.params.f=1"]
    )
    assert (cfg.rounds, cfg.clients, cfg.strategy.name, cfg.strategy.params) == (
        3,
        6,
        "krum",
        {"f": 1},
    )


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["roundz=3"], "unknown config key 'roundz'. Did you mean rounds?"),
        (["chain.validatrs=7"], "Did you mean validators"),
        (["rounds=three"], "wrong type for config key 'rounds'"),
        (["strategy.name=krumm"], "did you mean krum"),
        (["strategy.params.radios=2"], "unknown config key 'radios'"),
        (["data.name=mnist"], "did you mean mnist5k"),
        (["attack.fraction=1.5"], "attack.fraction"),
        (["attack=sign_flip", "attack.params.scal=2"], "scal"),
        (["rounds"], "not key=value"),
    ],
)
def test_mistakes_name_the_key(overrides: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        load_config(None, overrides)
    assert fragment in str(info.value)


def test_group_override_replaces_the_rule_params() -> None:
    cfg = load_config(None, ["strategy=krum", "strategy=median"])
    assert (cfg.strategy.name, cfg.strategy.params) == ("median", {})
    cfg = load_config(CONF / "preset" / "governance.yaml", ["strategy=trimmed_mean"])
    assert cfg.strategy.params == {"beta": 0.2}
    cfg = load_config(None, ["attack=sign_flip", "attack=ipm"])
    assert cfg.attack.params == {"epsilon": 0.5}
    # Data groups compose: a dataset, then a partition.
    cfg = load_config(None, ["data=mnist5k", "data=dirichlet"])
    assert (cfg.data.name, cfg.data.partition) == ("mnist5k", "dirichlet")


def test_missing_file_and_frozen() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("no/such.yaml")
    cfg = load_config()
    with pytest.raises(AttributeError):
        cfg.rounds = 5  # type: ignore[misc]
