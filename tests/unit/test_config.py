"""Run configuration: defaults equal conf/default.yaml, groups and presets load, and every kind of
mistake names the key and the closest valid ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fedray.config import RunConfig, load_config, to_yaml
from fedray.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "fedray" / "conf"


def test_default_yaml_equals_dataclass_defaults() -> None:
    on_disk = OmegaConf.to_container(OmegaConf.load(CONF / "default.yaml"))
    assert on_disk == OmegaConf.to_container(OmegaConf.create(to_yaml(RunConfig())))
    assert load_config(CONF / "default.yaml") == load_config()


@pytest.mark.parametrize(
    "path", sorted(CONF.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONF))
)
def test_every_shipped_yaml_loads(path: Path) -> None:
    group = path.parent.name
    if group != "conf":  # a group file (preset=minimal, strategy=krum), picked by name
        extra = ["clients=30"] if path.stem == "synthetic" else []  # 30 natural users
        cfg = load_config(None, [f"{group}={path.stem}", *extra])
        if group == "preset":
            assert cfg == load_config(path)
        elif group == "privacy":
            assert cfg.privacy.mode == path.stem
        elif group in ("strategy", "attack"):
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


def test_group_files_merge_before_plain_keys_whatever_their_order() -> None:
    for overrides in (
        ["attack.fraction=0.3", "attack=sign_flip"],
        ["attack=sign_flip", "attack.fraction=0.3"],
    ):
        cfg = load_config(None, overrides)
        assert (cfg.attack.name, cfg.attack.fraction, cfg.attack.params) == (
            "sign_flip",
            0.3,
            {"scale": 4.0},
        )
    cfg = load_config(None, ["strategy.params.f=1", "strategy=krum"])
    assert cfg.strategy.params == {"f": 1}


def test_unset_training_settings_take_the_models_defaults() -> None:
    assert (load_config().training.epochs, load_config().training.lr) == (5, 0.1)
    cnn = load_config(None, ["model.name=cnn"]).training
    assert (cnn.epochs, cnn.lr) == (2, 0.01)
    mine = load_config(None, ["model.name=cnn", "training.lr=0.05", "training.epochs=3"])
    assert (mine.training.epochs, mine.training.lr) == (3, 0.05)
    # the saved config holds the values the run used, so reloading it changes nothing
    assert "lr: 0.01" in to_yaml(load_config(None, ["model.name=cnn"]))


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"rounds: [1\n", "is not valid YAML at line 2, column 1"),
        (b"rounds: 3\nname: \xff\xfe\n", "is not UTF-8 text"),
        (b"- 1\n- 2\n", "must hold a mapping"),
        (b"data: 5\n", "incompatible config"),
        (b"strategy:\n  params: 3\n", "wrong type for config key 'strategy.params'"),
    ],
)
def test_unreadable_files_are_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, fragment: str
) -> None:
    from fedray.cli import main

    path = tmp_path / "cfg.yaml"
    path.write_bytes(content)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "override",
    [
        "data.alpha=0",
        "data.alpha=-1",
        "data.test_fraction=0",
        "data.test_fraction=1",
        "training.epochs=0",
        "training.lr=0",
        "training.lr=-0.1",
        "training.batch_size=0",
        "model.hidden=0",
        "runtime.num_cpus=0",
        "runtime.pool_num_cpus=0",
        "runtime.validator_num_cpus=-1",
        "chain.block_interval_s=0",
        "chain.timeout_propose_s=0.1",
        "chain.round_gather_s=-1",
        "chain.timeout_commit_s=1.0",  # not below timeout_propose_s 1.0
        "runtime.object_store_mb=10",
        "seed=-1",
        "name=../x",
    ],
)
def test_values_out_of_range_are_refused_before_anything_starts(override: str) -> None:
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        load_config(None, [override])


def test_a_group_file_named_with_its_suffix_is_explained() -> None:
    with pytest.raises(ConfigError, match=r"pick a data file by name \(data=digits\)"):
        load_config(None, ["data=digits.yaml"])


def test_a_group_pick_without_its_file_is_refused_not_run_with_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A typo, or an install whose conf/ is missing, must not run `attack=sign_flip` as an attack
    # with fraction 0 (issue 22): the pick names its file and what is there.
    with pytest.raises(ConfigError, match=r"no attack file sign_flp\.yaml .*available: alie"):
        load_config(None, ["attack=sign_flp"])
    monkeypatch.setenv("FEDRAY_CONF_DIR", str(tmp_path))  # a user's conf dir without attack/
    with pytest.raises(ConfigError, match=r"no attack file sign_flp\.yaml .*available: alie"):
        load_config(None, ["attack=sign_flp"])
    cfg = load_config(None, ["attack.name=sign_flip", "attack.fraction=0.2"])
    assert (cfg.attack.name, cfg.attack.fraction) == ("sign_flip", 0.2)


def test_the_privacy_group_sets_the_mode_and_its_budget_and_resets_on_none() -> None:
    cfg = load_config(None, ["privacy=local"])
    assert (cfg.privacy.mode, cfg.privacy.epsilon, cfg.privacy.delta) == ("local", 8.0, 1e-5)
    cfg = load_config(None, ["privacy.epsilon=3", "privacy=distributed"])  # key after the group
    assert (cfg.privacy.mode, cfg.privacy.epsilon) == ("distributed", 3.0)
    assert load_config(None, ["privacy=local", "privacy=none"]).privacy.mode == "none"
    for bad in ("privacy.mode=central", "privacy.delta=1.5", "privacy.clip_norm=0"):
        with pytest.raises(ConfigError, match="privacy"):
            load_config(None, [bad])
    with pytest.raises(ConfigError, match="noise_multiplier"):
        load_config(None, ["privacy=local", "privacy.epsilon=.inf"])
