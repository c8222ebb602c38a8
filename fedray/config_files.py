"""Reading config YAML and explaining OmegaConf's errors, each as one `ConfigError` line.

`load_yaml` turns every way a file can be unreadable (missing, not UTF-8, YAML that does not parse,
a list or a value where a mapping belongs) into one line naming the file, and the line and column
where YAML has one. `explain` turns an OmegaConf merge error into one line naming the key and, for
an unknown key, the closest valid ones. `merge_override` merges one command-line override (a group file by name, or one key);
`fedray.config` owns the schema and the merge order.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from fedray.errors import ConfigError

GROUPS = ("strategy", "attack", "data", "privacy")  # config groups: conf/<group>/<name>.yaml


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


def conf_dir() -> Path:
    """Where YAML presets and groups live: $FEDRAY_CONF_DIR, ./conf, or the source tree's conf/."""
    env = os.environ.get("FEDRAY_CONF_DIR")
    if env:
        return Path(env)
    local = Path.cwd() / "conf"
    if (local / "default.yaml").exists():
        return local
    return Path(__file__).resolve().parent.parent / "conf"


def split_override(item: str) -> tuple[str, str]:
    """`key=value` as (key, value); anything else is a `ConfigError`."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value")
    key, value = item.split("=", 1)
    return key, value


def is_group_pick(item: str) -> bool:
    """Whether `item` picks a group's file by name (`strategy=krum`), not one key."""
    key, value = split_override(item)
    return key in GROUPS and "." not in value


def merge_override(cfg: DictConfig, item: str, schema: type) -> DictConfig:
    """`cfg` with one override merged: a group pick (`strategy=krum`) merges that group's file,
    a key=value sets one key. `schema` is the run config's dataclass."""
    key, value = split_override(item)
    if key in GROUPS and not is_group_pick(item):
        stem = Path(value).stem
        raise ConfigError(
            f"override {item!r}: pick a {key} file by name ({key}={stem}) or set one key "
            f"({key}.name=...)"
        )
    if is_group_pick(item):
        group_file = conf_dir() / key / f"{value}.yaml"
        if group_file.exists():
            content = load_yaml(group_file)
            if key in ("strategy", "attack", "privacy"):
                # A rule's params belong to that rule: the group replaces the node (defaults of
                # its dataclass, then the file) instead of merging into the previous rule's params.
                node = OmegaConf.merge(OmegaConf.structured(type(getattr(schema(), key))), content)
                data = OmegaConf.to_container(cfg)
                assert isinstance(data, dict)
                data[key] = OmegaConf.to_container(node)
                return OmegaConf.merge(OmegaConf.structured(schema), data)  # type: ignore[return-value]
            return OmegaConf.merge(cfg, {key: content})  # type: ignore[return-value]
        # No silent fallback to a bare name: without its file, `attack=sign_flip` would run
        # with the dataclass defaults (fraction 0), e.g. on an install that lacks conf/.
        folder = group_file.parent
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        where = f"available: {', '.join(known)}" if known else f"{folder} does not exist"
        raise ConfigError(
            f"override {item!r}: no {key} file {value}.yaml in {folder} ({where}; "
            f"FEDRAY_CONF_DIR names another conf directory, {key}.name={value} sets the name alone)"
        )
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))  # type: ignore[return-value]
