"""Config mistakes people make, each one line: a wrong type names the key, the value and the type
expected (not OmegaConf's internals); a misspelt group pick or attack suggests the closest name;
the live metrics settings and `baseline=false` load."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedray.config import RunConfig, load_config
from fedray.config_files import expected_type
from fedray.errors import ConfigError


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("rounds=abc", "wrong type for config key 'rounds': expected an integer, got 'abc'"),
        (
            "chain.validators=1.5",
            "wrong type for config key 'chain.validators': expected an integer, got 1.5",
        ),
        (
            "baseline=maybe",
            "wrong type for config key 'baseline': expected true or false, got 'maybe'",
        ),
        (
            "chain.round_timeout_s=soon",
            "wrong type for config key 'chain.round_timeout_s': expected a number, got 'soon'",
        ),
        (
            "runtime.num_cpus=all",
            "wrong type for config key 'runtime.num_cpus': expected an integer or null, got 'all'",
        ),
        ("chain.params=5", "wrong type for config key 'chain.params': expected a mapping, got 5"),
        ("governance=3", "wrong type for config key 'governance': expected a list, got 3"),
    ],
)
def test_a_type_error_is_the_key_the_value_and_the_type(override: str, line: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert str(info.value) == line


def test_a_type_error_in_a_file_is_one_line_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fedray.cli import main

    path = tmp_path / "cfg.yaml"
    path.write_text("chain:\n  validators: four\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: wrong type for config key 'chain.validators': expected an integer, got 'four'\n"
    )


def test_expected_type_follows_the_schema() -> None:
    root = RunConfig()
    assert expected_type(root, "governance[0].round") == "an integer"
    assert expected_type(root, "governance[0].validator_votes") == "a string"
    assert expected_type(root, "training.lr") == "a number or null"
    assert expected_type(root, "metrics.mlflow_uri") == "a string or null"
    assert expected_type(root, "strategy.params.f") == ""  # free-form params have no schema
    assert expected_type(root, "no.such") == ""


@pytest.mark.parametrize(
    ("override", "hint"),
    [
        ("attack=signflip", "did you mean attack=sign_flip?"),
        ("strategy=krumm", "did you mean strategy=krum?"),
        ("data=dirichlett", "did you mean data=dirichlet?"),
        ("attack.name=signflip", "did you mean sign_flip?"),
        ("strategy.name=krumm", "did you mean krum"),
    ],
)
def test_a_misspelt_name_suggests_the_closest(override: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert hint in str(info.value)


def test_no_suggestion_when_nothing_is_close() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, ["attack=zzz"])
    assert "did you mean" not in str(info.value)


def test_metrics_settings_and_skipping_the_baseline_load() -> None:
    cfg = load_config(
        None, ["baseline=false", "metrics.log_rounds=always", "metrics.tensorboard=false"]
    )
    assert cfg.baseline is False
    assert (cfg.metrics.log_rounds, cfg.metrics.tensorboard, cfg.metrics.ray) == (
        "always",
        False,
        True,
    )
    with pytest.raises(ConfigError, match=r"metrics.log_rounds.*did you mean always"):
        load_config(None, ["metrics.log_rounds=alway"])
