"""Sweep files: what `parse_sweep` accepts, refuses (one ConfigError line naming the key) and
expands; and how a trial's config becomes `key=value` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fedray.errors import ConfigError
from fedray.sweep.spec import Asha, Dimension, load_sweep, override, parse_sweep

ROOT = Path(__file__).resolve().parents[3]


def spec_data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "base": {"config": "minimal"},
        "grid": {"strategy": ["fedavg", "median"], "attack": ["none", "sign_flip"]},
    }
    data.update(extra)
    return data


def test_grid_expands_to_every_combination_first_key_slowest() -> None:
    spec = parse_sweep(spec_data(grid={"strategy": ["fedavg", "median"], "data.alpha": [0.1, 1]}))
    assert spec.grid_points() == [
        {"strategy": "fedavg", "data.alpha": 0.1},
        {"strategy": "fedavg", "data.alpha": 1},
        {"strategy": "median", "data.alpha": 0.1},
        {"strategy": "median", "data.alpha": 1},
    ]
    assert spec.varied() == ["strategy", "data.alpha"]


def test_a_trial_config_merges_base_overrides_and_its_point() -> None:
    spec = parse_sweep(spec_data(base={"config": "minimal", "overrides": ["rounds=3"]}))
    cfg = spec.trial_config({"strategy": "median", "attack": "sign_flip"})
    assert (cfg.name, cfg.rounds, cfg.clients) == ("minimal", 3, 6)  # preset, then overrides
    assert cfg.strategy.name == "median"
    assert (cfg.attack.name, cfg.attack.fraction) == ("sign_flip", 0.2)  # the group file merged


def test_the_example_sweep_is_a_2x2_grid_over_the_minimal_preset() -> None:
    spec = load_sweep(ROOT / "examples" / "sweep.yaml")
    assert len(spec.grid_points()) == 4
    assert spec.base == (ROOT / "fedray" / "conf" / "preset" / "minimal.yaml").resolve()


def test_a_base_file_path_and_no_base() -> None:
    spec = parse_sweep(spec_data(base=str(ROOT / "fedray" / "conf" / "preset" / "minimal.yaml")))
    assert spec.trial_config({}).name == "minimal"
    assert parse_sweep(spec_data(base=None)).base is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (spec_data(gird={}), "unknown key 'gird' (did you mean grid?)"),
        (spec_data(base={"confg": "minimal"}), "unknown key 'base.confg'"),
        (spec_data(scheduler={"hyperband": {}}), "unknown key 'scheduler.hyperband'"),
        (spec_data(scheduler={"asha": {"grace": 1}}), "unknown key 'scheduler.asha.grace'"),
        (spec_data(resources={"cpus": 2}), "unknown key 'resources.cpus'"),
        (spec_data(search={"data.alpha": {"normal": [0, 1]}}), "unknown key 'search.data.alpha."),
        (spec_data(base={"config": "minimall"}), "no preset 'minimall'"),
        (spec_data(base={"config": "nowhere.yaml"}), "nowhere.yaml does not exist"),
        (spec_data(base={"overrides": ["rounds"]}), "'base.overrides' is a list of key=value"),
        (spec_data(grid={"strategy": []}), "'grid.strategy' is a non-empty list"),
        (spec_data(grid={"strategy": "fedavg"}), "'grid.strategy' is a non-empty list"),
        (spec_data(grid={"strategy": [["a"]]}), "takes plain values"),
        (spec_data(grid={"Bad Key": [1]}), "keys are config keys"),
        (spec_data(grid={}), "nothing varies"),
        (spec_data(search={"strategy": {"choice": ["krum"]}}), "in both grid and search"),
        (spec_data(search={"data.alpha": {"uniform": [1.0, 0.5]}}), "needs low < high"),
        (spec_data(search={"data.alpha": {"loguniform": [0, 1]}}), "must be a number > 0"),
        (spec_data(search={"data.alpha": {"uniform": [0.1]}}), "is [low, high]"),
        (spec_data(num_samples=0), "'num_samples' must be an integer >= 1"),
        (spec_data(name="a b"), "'name' is a file name"),
        (spec_data(scheduler={"asha": {"reduction_factor": 1}}), "must be > 1"),
        (spec_data(resources={"strategy": "RANDOM"}), "'resources.strategy' is PACK"),
        (spec_data(resources={"driver_cpus": 0}), "'resources.driver_cpus' must be a number > 0"),
        ([1, 2], "'the top level' must be a mapping"),
    ],
)
def test_a_malformed_sweep_is_one_config_error(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_sweep(data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("grid", "search", "message"),
    [
        ({"strategy": ["fedavg", "krumm"]}, {}, "strategy=krumm cannot run"),
        ({"data.alpah": [0.1]}, {}, "unknown config key 'data.alpah'"),
        ({"rounds": [2, 0]}, {}, "config key 'rounds': must be at least 1"),
        ({"strategy": ["fedavg"]}, {"data.alpha": {"uniform": [-1.0, 1.0]}}, "data.alpha=-1.0"),
        ({"strategy": ["fedavg"]}, {"attack": {"choice": ["none", "sing_flip"]}}, "sing_flip"),
        ({"strategy": ["fedavg"]}, {"chain.validators": {"randint": [0, 4]}}, "validators=0"),
    ],
)
def test_every_trial_config_is_checked_before_anything_runs(
    grid: dict[str, Any], search: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_sweep({"base": "minimal", "grid": grid, "search": search})
    assert message in str(err.value)


def test_search_dimensions_and_their_probes() -> None:
    spec = parse_sweep(
        spec_data(
            search={
                "data.alpha": {"loguniform": [0.05, 1]},
                "training.lr": {"uniform": [0.01, 0.1]},
                "chain.validators": {"randint": [1, 5]},
                "model.name": {"choice": ["logreg", "mlp"]},
            }
        )
    )
    assert spec.search == (
        Dimension("data.alpha", "loguniform", (0.05, 1.0)),
        Dimension("training.lr", "uniform", (0.01, 0.1)),
        Dimension("chain.validators", "randint", (1, 5)),
        Dimension("model.name", "choice", ("logreg", "mlp")),
    )
    assert spec.search[2].probes() == (1, 4)  # randint's high is exclusive


def test_defaults_and_the_scheduler() -> None:
    spec = parse_sweep(spec_data(scheduler={"asha": {"grace_period": 2}}))
    assert spec.scheduler == Asha(grace_period=2, reduction_factor=2.0)
    assert parse_sweep(spec_data()).scheduler is None
    assert (spec.num_samples, spec.name, spec.output_dir) == (1, "sweep", "sweeps")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("median", "strategy=median"),
        (0.5, "strategy=0.5"),
        (True, "strategy=true"),
        (None, "strategy=null"),
        ("62842_00000", "strategy='62842_00000'"),  # YAML would read an int
        ("1e-3", "strategy='1e-3'"),
        ("a: b", "strategy='a: b'"),
    ],
)
def test_override_text_keeps_the_value_and_its_type(value: Any, text: str) -> None:
    assert override("strategy", value) == text


def test_a_run_name_override_keeps_a_numeric_looking_string() -> None:
    spec = parse_sweep(spec_data())
    assert spec.trial_config({}, (override("name", "62842_00000"),)).name == "62842_00000"


def test_fedray_sweep_refuses_a_bad_file_in_one_line_before_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fedray.cli import main

    bad = tmp_path / "sweep.yaml"
    bad.write_text("base: minimal\ngrid: {strategy: [fedavg, krumm]}\n")
    assert main(["sweep", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: sweep file: the trial strategy=krumm cannot run")
    assert "\n" not in err
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad.write_text("grid: [\n")
    assert main(["sweep", str(bad)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err
