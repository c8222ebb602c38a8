"""Every `fedray run` command the README shows learns: each runs as written (on the session's local
Ray, results in a temporary folder) and must end above a minimum test accuracy."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from fedray.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
MIN_ACCURACY = 0.8  # every shipped data set has 10 classes: chance is 0.1


def readme_commands() -> list[str]:
    """The `fedray run ...` commands in the README's bash blocks (a cluster address excepted)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            m = re.search(r"(fedray run\b[^#&\n]*)", line)
            if m and "--" not in m.group(1):  # --address, --resume: no run of their own
                commands.append(" ".join(m.group(1).split()))
    return list(dict.fromkeys(commands))


def test_the_readme_shows_the_commands_this_test_runs() -> None:
    commands = readme_commands()
    assert "fedray run" in commands and len(commands) >= 6
    assert any("model.name=cnn" in c for c in commands)


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_learns(ray_cluster: None, tmp_path: Path, command: str) -> None:
    args = shlex.split(command)[1:] + [f"output_dir={tmp_path}", "runtime.progress=false"]
    assert cli_main(args) == 0
    (run_dir,) = list(tmp_path.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    print(command, "->", summary["final_accuracy"], summary.get("baseline_accuracy"))
    assert summary["final_accuracy"] >= MIN_ACCURACY, summary
    if "baseline_accuracy" in summary:
        assert summary["baseline_accuracy"] >= MIN_ACCURACY, summary  # the centralized one too
