"""What deploys fedray stays in step with what fedray pins: the Dockerfile starts from Ray's image
at the pinned Ray version and Python, installs the pinned torch and this repository; a built wheel
carries every conf/ file, and an install of it resolves group picks from any directory. (Docker is
not run here: no daemon on the machines these tests run on.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "fedray" / "conf"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FROM = re.compile(r"^FROM\s+rayproject/ray:(?P<ray>\d+\.\d+\.\d+)-py(?P<py>3\d+)-cpu\s*$", re.M)


def pinned(name: str) -> SpecifierSet:
    """The version specifier pyproject.toml gives dependency `name`."""
    for dep in PYPROJECT["project"]["dependencies"]:
        m = re.fullmatch(rf"{name}(\[[^\]]*\])?\s*(?P<spec>.*)", dep)
        if m:
            return SpecifierSet(m.group("spec"))
    raise AssertionError(f"{name} is not a dependency")


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_starts_from_rays_cpu_image_at_the_pinned_ray_and_python() -> None:
    (m,) = FROM.finditer(dockerfile())  # one stage, Ray's CPU image
    assert Version(m.group("ray")) in pinned("ray")
    python = Version(f"3.{m.group('py')[1:]}")
    assert python in SpecifierSet(PYPROJECT["project"]["requires-python"])


def test_dockerfile_installs_the_pinned_cpu_torch_then_this_repository() -> None:
    text = dockerfile()
    (torch,) = re.findall(r"pip install [^\n]*torch==(\S+) --index-url (\S+)", text)
    assert torch[0] in pinned("torch") and torch[1].endswith("/whl/cpu")
    assert re.search(r"pip install --no-cache-dir \.\s", text)  # the build context, not PyPI
    assert not re.search(r"pip install[^\n]*\sfedray(\s|$)", text)
    copied = re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+\S+$", text, flags=re.M)
    assert {"pyproject.toml", "fedray"} <= {p for line in copied for p in line.split()}


def test_the_wheel_carries_every_conf_file(tmp_path: Path) -> None:
    wheel = build_wheel(source_copy(tmp_path / "src"), tmp_path / "dist")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"fedray/conf/{p.relative_to(CONF).as_posix()}" for p in CONF.rglob("*.yaml")}
    assert "fedray/conf/attack/sign_flip.yaml" in shipped and shipped <= names


def source_copy(src: Path) -> Path:
    """What a wheel is built from, copied (building in the checkout would leave build/ there)."""
    shutil.copytree(ROOT / "fedray", src / "fedray", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    return src


def build_wheel(src: Path, dist: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation"]
    out = subprocess.run([*cmd, "-q", "-w", str(dist)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = dist.glob("fedray-*.whl")
    return wheel


@pytest.mark.slow
def test_an_installed_wheel_resolves_group_picks_from_any_directory(tmp_path: Path) -> None:
    # The wheel installed on its own (pip --target), its `fedray` command run from an empty
    # directory: nothing of the checkout is importable there.
    wheel = build_wheel(source_copy(tmp_path / "src"), tmp_path / "dist")
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q"]
    out = subprocess.run(
        [*install, "--target", str(site), str(wheel)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("FEDRAY_CONF_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    shown = subprocess.run(
        [str(site / "bin" / "fedray"), "config", "show", "attack=sign_flip", "strategy=krum"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "  name: sign_flip\n  fraction: 0.2\n" in shown.stdout
    assert "  name: krum\n  params:\n    f: 4\n" in shown.stdout
    assert f"# conf directories: {site / 'fedray' / 'conf'}" in shown.stdout
