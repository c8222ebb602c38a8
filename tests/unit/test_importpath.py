"""Import paths in config: a good path resolves from the working directory and from `python_path`;
each way a path can fail is its own `ConfigError` subclass naming the config key."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedray.errors import ConfigError
from fedray.importpath import (
    ImportPathAttributeError,
    ImportPathError,
    ImportPathModuleError,
    ImportPathSyntaxError,
    add_search_paths,
    is_import_path,
    resolve,
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory; sys.path and the test packages' modules are restored after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("ext_")]:
        del sys.modules[name]


def package(root: Path, name: str, body: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    (root / name / "mod.py").write_text(body)


def test_a_path_resolves_from_the_working_directory(workdir: Path) -> None:
    package(
        workdir,
        "ext_cwd_pkg",
        "class Thing:\n    @staticmethod\n    def build():\n        return 7\n",
    )
    assert resolve("ext_cwd_pkg.mod:Thing.build", "model.factory")() == 7
    assert sys.path[0] == str(workdir)


def test_python_path_directories_resolve_relative_to_the_working_directory(workdir: Path) -> None:
    package(workdir / "examples" / "here", "ext_sub_pkg", "def load():\n    return 'ok'\n")
    with pytest.raises(ImportPathModuleError):
        resolve("ext_sub_pkg.mod:load", "data.loader")
    add_search_paths(["examples/here"])
    assert resolve("ext_sub_pkg.mod:load", "data.loader")() == "ok"


def test_a_missing_python_path_directory_is_refused(workdir: Path) -> None:
    with pytest.raises(ImportPathError, match=r"python_path\[0\]"):
        add_search_paths(["no/such/dir"])


@pytest.mark.parametrize(
    "value", ["pkg.mod", "pkg.mod:", ":build", "pkg/mod.py:build", "pkg.mod:build:x", "1pkg:x", ""]
)
def test_a_value_that_is_not_module_colon_attribute_is_a_syntax_error(value: str) -> None:
    assert not is_import_path(value)
    with pytest.raises(ImportPathSyntaxError, match="model.factory"):
        resolve(value, "model.factory")


def test_a_missing_module_names_the_key_and_where_it_looked(workdir: Path) -> None:
    with pytest.raises(ImportPathModuleError, match=r"'data.loader'.*ext_nowhere"):
        resolve("ext_nowhere.mod:load", "data.loader")


def test_a_module_that_raises_while_importing_is_a_module_error(workdir: Path) -> None:
    package(workdir, "ext_broken_pkg", "raise RuntimeError('boom')\n")
    with pytest.raises(ImportPathModuleError, match="RuntimeError: boom"):
        resolve("ext_broken_pkg.mod:x", "attack.factory")


def test_a_missing_attribute_is_an_attribute_error(workdir: Path) -> None:
    package(workdir, "ext_attr_pkg", "def build():\n    return 1\n")
    with pytest.raises(ImportPathAttributeError, match="buidl"):
        resolve("ext_attr_pkg.mod:buidl", "model.factory")


def test_an_attribute_that_is_not_callable_is_an_attribute_error(workdir: Path) -> None:
    package(workdir, "ext_value_pkg", "BUILD = 3\n")
    with pytest.raises(ImportPathAttributeError, match="not a callable"):
        resolve("ext_value_pkg.mod:BUILD", "model.factory")


def test_every_import_path_error_is_a_config_error() -> None:
    for cls in (ImportPathSyntaxError, ImportPathModuleError, ImportPathAttributeError):
        assert issubclass(cls, ConfigError)
