"""Import paths in config (`model.factory=pkg.module:build`) resolved to Python objects.

Owns: the syntax `package.module:attribute` (the attribute may be dotted, `module:Class.build`),
putting the working directory on `sys.path` first, as `python -m` does, so a package in it resolves
without installing it, and the run's `python_path` directories (relative to the working directory)
after it (`add_search_paths`), and one typed error per way a path can fail:
`ImportPathSyntaxError` (not `module:attribute`), `ImportPathModuleError` (the module cannot be
imported, or raises while importing), `ImportPathAttributeError` (no such attribute, or not
callable) and, for the rings' protocol checks, `ExtensionTypeError` (a factory returned the wrong
type). Each is a `ConfigError`, so `fedray run` reports it as one line naming the config key.

Ray actors find the same modules: Ray puts the driver's working directory on every local worker's
`sys.path`, and on a multi-node cluster a job's `runtime_env` `working_dir` (or `py_modules`) ships
the package to every node (docs/extending.md).

Deliberately ignored: entry points and plugin discovery (a config names what it runs), reloading
a module that changed on disk. Imports nothing from fedray but errors, so every ring may use it.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from fedray.errors import ConfigError

_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class ImportPathError(ConfigError):
    """An import path in config does not name a usable object."""

    code = "import_path"


class ImportPathSyntaxError(ImportPathError):
    """The value is not of the form `package.module:attribute`."""

    code = "import_path_syntax"


class ImportPathModuleError(ImportPathError):
    """The module of an import path cannot be imported (missing, or it raised while importing)."""

    code = "import_path_module"


class ImportPathAttributeError(ImportPathError):
    """The module has no such attribute, or the attribute is not callable."""

    code = "import_path_attribute"


class ExtensionTypeError(ImportPathError):
    """An extension's factory returned an object that does not satisfy its protocol."""

    code = "extension_type"


def is_import_path(value: str) -> bool:
    """Whether `value` has the syntax of an import path (`module:attribute`)."""
    return bool(_PATH.fullmatch(value))


def add_working_directory() -> None:
    """Put the current working directory first on `sys.path` (once), as `python -m` does."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def add_search_paths(directories: Sequence[str]) -> None:
    """Put each of `directories` (relative to the working directory, or absolute) on `sys.path`
    right after the working directory, in order, once each; a missing one is a `ConfigError`."""
    add_working_directory()
    for i, directory in enumerate(directories):
        path = os.path.abspath(directory)
        if not os.path.isdir(path):
            raise ImportPathError(
                f"config key 'python_path[{i}]': {directory!r} is not a directory (seen from "
                f"{os.getcwd()})"
            )
        if path not in sys.path:
            sys.path.insert(1 + i, path)


def resolve(path: str, key: str) -> Callable[..., Any]:
    """The callable named by `path`; `key` is the config key it came from (for messages)."""
    if not isinstance(path, str) or not is_import_path(path):
        raise ImportPathSyntaxError(
            f"config key '{key}': {path!r} is not an import path 'package.module:attribute'"
        )
    module_name, attribute = path.split(":")
    add_working_directory()
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ImportPathModuleError(
            f"config key '{key}': cannot import {module_name!r} ({exc}); the working directory "
            f"{os.getcwd()} and the installed packages were searched"
        ) from None
    except Exception as exc:  # the user's module raised while importing
        raise ImportPathModuleError(
            f"config key '{key}': importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from None
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ImportPathAttributeError(
                f"config key '{key}': {module_name!r} has no attribute {attribute!r}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ImportPathAttributeError(
            f"config key '{key}': {path!r} is a {type(obj).__name__}, not a callable"
        )
    return obj  # type: ignore[no-any-return]
