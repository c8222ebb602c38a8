"""Reading config YAML and explaining OmegaConf's errors, each as one `ConfigError` line.

`load_yaml` turns every way a file can be unreadable (missing, not UTF-8, YAML that does not parse,
a list or a value where a mapping belongs) into one line naming the file, and the line and column
where YAML has one. `explain` turns an OmegaConf merge error into one line naming the key and, for
an unknown key, the closest valid ones. `merge_override` merges one command-line override (a
group file by name, or one key); `fedray.config` owns the schema and the merge order.

Config groups are the directories of the conf directories (`conf_dirs`: $FEDRAY_CONF_DIR, then the
conf/ inside the package), whatever they are: `preset/` holds whole run configs, any other group
merges under the key of its name (data groups compose: a dataset, then a partition), and a group
whose pick owns its node (`RULE_GROUPS`: strategy, attack, privacy) replaces that node.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from fedray.errors import ConfigError

PRESET = "preset"  # the group of whole run configs (`preset=minimal`)
RULE_GROUPS = frozenset({"strategy", "attack", "privacy"})
"""Groups whose pick replaces the node: a rule owns its params, they never merge into the last one's."""


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
        expected = expected_type(root, key)
        if expected:
            got = one_line(repr(getattr(exc, "value", None)))
            return ConfigError(f"wrong type for config key '{key}': expected {expected}, got {got}")
        return ConfigError(f"wrong type for config key '{key}': {msg}")
    where = f" at '{key}'" if key else ""
    return ConfigError(f"incompatible config{where}: {msg}")


_TYPE_WORDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    dict: "a mapping",
    list: "a list",
}


def expected_type(root: Any, key: str) -> str:
    """What the schema `root` (an instance) holds at dotted `key` (`governance[0].round` too), in
    words ("an integer", "a number or null"); empty when the key leads nowhere typed."""
    node: Any = type(root)
    hint: Any = None
    for part in re.sub(r"\[\d+\]", ".[]", key).split("."):
        if part == "[]":  # a list's element
            args = typing.get_args(hint)
            hint = node = args[0] if args else None
            continue
        if not (isinstance(node, type) and dataclasses.is_dataclass(node)):
            return ""
        hint = typing.get_type_hints(node).get(part)
        node = hint
    nullable = False
    if _is_union(hint):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(options) < len(typing.get_args(hint))
        hint = options[0] if len(options) == 1 else None
    words = _TYPE_WORDS.get(typing.get_origin(hint) or hint, "")
    return f"{words} or null" if words and nullable else words


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def load_yaml(path: Path) -> DictConfig:
    """The YAML mapping in `path`; every way it can be unreadable is one ConfigError line."""
    if not path.exists():
        group, name = path.parent.name, path.stem
        moved = path.suffix == ".yaml" and group in groups() and name in group_choices(group)
        hint = f" (the shipped {group} files are picked by name: {group}={name})" if moved else ""
        raise ConfigError(f"config file {path} does not exist{hint}")
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


def conf_dirs() -> list[Path]:
    """Where YAML presets and groups live, searched in order: each directory of $FEDRAY_CONF_DIR
    (separated by os.pathsep: a user's own groups and presets, or replacements of shipped ones),
    then the conf/ shipped inside the fedray package (`importlib.resources`), so a pick resolves
    from any working directory and from an installed wheel."""
    env = [Path(d) for d in os.environ.get("FEDRAY_CONF_DIR", "").split(os.pathsep) if d]
    return [*env, packaged_conf()]


def packaged_conf() -> Path:
    """The conf/ directory inside the installed fedray package."""
    root = resources.files("fedray") / "conf"
    if not isinstance(root, Path):  # a zipped install: the YAML files have no path
        raise ConfigError(
            "fedray is installed where its conf/ has no file system path (a zip); install it "
            "as a wheel or point FEDRAY_CONF_DIR at a copy of fedray/conf"
        )
    return root


def groups() -> set[str]:
    """Config groups: every directory under a conf directory (`<group>/<name>.yaml`). `preset`
    holds whole run configs; any other group merges under the config key of its name."""
    return {
        d.name
        for root in conf_dirs()
        if root.is_dir()
        for d in root.iterdir()
        if d.is_dir() and not d.name.startswith((".", "_"))
    }


def group_file(group: str, name: str) -> Path | None:
    """The first `<group>/<name>.yaml` along `conf_dirs()`, or None."""
    for root in conf_dirs():
        candidate = root / group / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    return None


def group_choices(group: str) -> list[str]:
    """The names a pick of `group` may take, over every conf directory."""
    return sorted(
        {
            p.stem
            for root in conf_dirs()
            if (root / group).is_dir()
            for p in (root / group).glob("*.yaml")
        }
    )


def split_override(item: str) -> tuple[str, str]:
    """`key=value` as (key, value); anything else is a `ConfigError`."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value")
    key, value = item.split("=", 1)
    return key, value


def is_group_pick(item: str) -> bool:
    """Whether `item` picks a group's file by name (`strategy=krum`), not one key."""
    key, value = split_override(item)
    return key in groups() and "." not in value


def is_preset_pick(item: str) -> bool:
    """Whether `item` picks a whole run config (`preset=minimal`); it merges before other picks."""
    return is_group_pick(item) and split_override(item)[0] == PRESET


def merge_override(cfg: DictConfig, item: str, schema: type) -> DictConfig:
    """`cfg` with one override merged: a group pick (`strategy=krum`) merges that group's file,
    a key=value sets one key. `schema` is the run config's dataclass."""
    key, value = split_override(item)
    if key in groups() and not is_group_pick(item):
        stem = Path(value).stem
        raise ConfigError(
            f"override {item!r}: pick a {key} file by name ({key}={stem}) or set one key "
            f"({key}.name=...)"
        )
    if not is_group_pick(item):
        return OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))  # type: ignore[return-value]
    found = group_file(key, value)
    if found is None:
        # No silent fallback to a bare name: without its file, `attack=sign_flip` would run
        # with the dataclass defaults (fraction 0), e.g. on an install that lacks conf/.
        known = group_choices(key)
        where = ", ".join(str(d) for d in conf_dirs())
        available = f"available: {', '.join(known)}" if known else "none there"
        near = difflib.get_close_matches(value, known, n=1)
        hint = f"; did you mean {key}={near[0]}?" if near else ""
        raise ConfigError(
            f"override {item!r}: no {key} file {value}.yaml under {where}{hint} ({available}; "
            f"FEDRAY_CONF_DIR adds conf directories, {key}.name={value} sets the name alone)"
        )
    content = load_yaml(found)
    if key == PRESET:
        return OmegaConf.merge(cfg, content)  # type: ignore[return-value]
    node_type = type(getattr(schema(), key, None))
    if key in RULE_GROUPS and dataclasses.is_dataclass(node_type):
        # A rule picked by name (strategy, attack) owns its params: the group replaces the node
        # (defaults of its dataclass, then the file) instead of merging into the previous rule's.
        node = OmegaConf.merge(OmegaConf.structured(node_type), content)
        data = OmegaConf.to_container(cfg)
        assert isinstance(data, dict)
        data[key] = OmegaConf.to_container(node)
        return OmegaConf.merge(OmegaConf.structured(schema), data)  # type: ignore[return-value]
    return OmegaConf.merge(cfg, {key: content})  # type: ignore[return-value]
