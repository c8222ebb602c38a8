"""Config groups resolve from the conf/ inside the package, whatever the working directory, with a
user's own conf directories (FEDRAY_CONF_DIR) searched first; a new group directory works as a group
without code changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedray.config import load_config
from fedray.config_files import conf_dirs, groups, packaged_conf
from fedray.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[2] / "fedray"


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no conf/ of fedray's, and no FEDRAY_CONF_DIR."""
    monkeypatch.delenv("FEDRAY_CONF_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_group_picks_resolve_from_any_working_directory(elsewhere: Path) -> None:
    cfg = load_config(None, ["attack=sign_flip", "strategy=krum"])
    assert (cfg.attack.name, cfg.attack.fraction, cfg.attack.params) == (
        "sign_flip",
        0.2,
        {"scale": 4.0},
    )
    assert (cfg.strategy.name, cfg.strategy.params) == ("krum", {"f": 4})
    assert conf_dirs() == [PACKAGE / "conf"] == [packaged_conf()]


def test_a_preset_is_picked_by_name_and_merges_before_other_picks(elsewhere: Path) -> None:
    by_name = load_config(None, ["strategy=krum", "rounds=3", "preset=minimal"])
    by_path = load_config(PACKAGE / "conf" / "preset" / "minimal.yaml", ["strategy=krum"])
    assert by_name.name == "minimal" and by_name.clients == 6 and by_name.rounds == 3
    assert by_name == load_config(None, ["preset=minimal", "strategy=krum", "rounds=3"])
    assert by_name.strategy == by_path.strategy and by_name.chain == by_path.chain
    with pytest.raises(ConfigError, match=r"no preset file minimall\.yaml .*available: .*minimal"):
        load_config(None, ["preset=minimall"])


def test_a_users_conf_dir_adds_groups_and_overrides_shipped_files(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = elsewhere / "myconf"
    (mine / "attack").mkdir(parents=True)
    (mine / "attack" / "sign_flip.yaml").write_text("name: sign_flip\nfraction: 0.4\n")
    (mine / "attack" / "mild.yaml").write_text("name: gaussian\nfraction: 0.1\n")
    (mine / "preset").mkdir()
    (mine / "preset" / "tiny.yaml").write_text("rounds: 1\nclients: 4\n")
    (mine / "model").mkdir()  # a group no code names: model=wide merges under `model`
    (mine / "model" / "wide.yaml").write_text("hidden: 256\n")
    monkeypatch.setenv("FEDRAY_CONF_DIR", str(mine))
    assert conf_dirs() == [mine, PACKAGE / "conf"]
    assert {"attack", "strategy", "data", "preset", "model"} <= groups()
    cfg = load_config(None, ["attack=sign_flip", "strategy=krum", "preset=tiny", "model=wide"])
    assert (cfg.attack.fraction, cfg.strategy.params, cfg.rounds, cfg.model.hidden) == (
        0.4,
        {"f": 4},
        1,
        256,
    )
    assert load_config(None, ["attack=mild"]).attack.name == "gaussian"
    with pytest.raises(ConfigError, match=r"available: alie, .*mild, .*sign_flip"):
        load_config(None, ["attack=nope"])


def test_an_old_conf_path_names_the_pick_that_replaces_it(elsewhere: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist \(.*picked by name: preset=minimal\)"):
        load_config("conf/preset/minimal.yaml")
    with pytest.raises(ConfigError, match=r"conf/preset/nope\.yaml does not exist$"):
        load_config("conf/preset/nope.yaml")
