"""Reading config YAML and explaining OmegaConf's errors, each as one `ConfigError` line.

`load_yaml` turns every way a file can be unreadable (missing, not UTF-8, YAML that does not parse,
a list or a value where a mapping belongs) into one line naming the file, and the line and column
where YAML has one. `explain` turns an OmegaConf merge error into one line naming the key and, for
an unknown key, the closest valid ones. `fedray.config` owns the schema and the merge order.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from fedray.errors import ConfigError


def one_line(text: object) -> str:
    """`text` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def keys_at(node: Any, path: list[str]) -> list[str]:
    """The field names of the dataclass reached from `node` along `path` (none if not one)."""
    for part in path:
        node = getattr(node, part, None) if dataclasses.is_dataclass(node) else None
    if dataclasses.is_dataclass(node):
        return [f.name for f in dataclasses.fields(node)]
    return []


def explain(exc: OmegaConfBaseException, root: Any) -> ConfigError:
    """One line for an OmegaConf error raised while merging into the schema `root` (an instance)."""
    key = str(getattr(exc, "full_key", "") or getattr(exc, "key", "") or "")
    if isinstance(exc, ConfigKeyError) or "not in" in str(exc):
        parts = key.split(".") if key else []
        valid = keys_at(root, parts[:-1])
        near = difflib.get_close_matches(parts[-1] if parts else key, valid, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        where = ".".join(parts[:-1]) or "the top level"
        return ConfigError(
            f"unknown config key '{key}'.{hint} Valid keys at {where}: {', '.join(valid)}"
        )
    text = str(getattr(exc, "msg", "") or exc)
    msg = one_line(text.splitlines()[0] if text.strip() else type(exc).__name__)
    if isinstance(exc, ValidationError) and key:
        return ConfigError(f"wrong type for config key '{key}': {msg}")
    where = f" at '{key}'" if key else ""
    return ConfigError(f"incompatible config{where}: {msg}")


def load_yaml(path: Path) -> DictConfig:
    """The YAML mapping in `path`; every way it can be unreadable is one ConfigError line."""
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
        node = OmegaConf.create(yaml.safe_load(text) or {})
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = one_line(exc.problem or exc.context or "syntax error")
        raise ConfigError(f"config file {path} is not valid YAML{at}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {one_line(exc)}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except (OmegaConfBaseException, ValueError, TypeError) as exc:
        raise ConfigError(f"config file {path}: {one_line(exc)}") from None
    if not isinstance(node, DictConfig):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not a list or a value")
    return node
