"""What `fedray run` refuses before Ray starts: more actors than the machine's CPUs can host, a
client count the data cannot split, a resume of something that is not a run or with a changed
config. Nothing is started and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedray.cli import main as cli_main
from fedray.config import load_config
from fedray.errors import ConfigError
from fedray.runtime import launch


def test_more_validators_than_the_machine_hosts_fail_before_ray(tmp_path: Path) -> None:
    out = f"output_dir={tmp_path / 'runs'}"
    cfg = load_config(None, [out, "chain.validators=100", "runtime.num_cpus=2"])
    with pytest.raises(ConfigError, match=r"reserves 20.60 CPUs .* this machine has 2: lower"):
        launch.run(cfg)
    apart = load_config(
        None, [out, "chain.validators=100", "runtime.num_cpus=2", "runtime.ingress=actor"]
    )
    with pytest.raises(ConfigError, match=r"reserves 25.60 CPUs .*x 0.2 \+ ingress 0.05, "):
        launch.run(apart)
    assert not (tmp_path / "runs").exists()


def test_a_client_count_the_data_cannot_split_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["run", "clients=10000", f"output_dir={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err
    assert "fewer than clients=10000: use data=synthetic_users" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_a_resume_keeps_its_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["run", "--resume", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    (tmp_path / "chain").mkdir()
    (tmp_path / "config.yaml").write_text("rounds: 3\n")
    assert cli_main(["run", "--resume", str(tmp_path), "rounds=5"]) == 2
    assert "only runtime.* may change" in capsys.readouterr().err
