"""A sweep file (`fedray sweep SWEEP.yaml`): what it may say, and its grid expanded.

```yaml
name: strategies                     # the sweep's directory is <output_dir>/<name>-<time>
base:
  config: minimal                    # a preset (conf/preset/NAME.yaml) or a YAML file's path
  overrides: [rounds=3]              # key=value items, as on `fedray run`'s command line
grid:                                # every combination runs (num_samples times each)
  strategy: [fedavg, median]         # a config group picks its file, as strategy=median does
  attack: [none, sign_flip]
search:                              # sampled once per trial
  data.alpha: {loguniform: [0.05, 1.0]}
num_samples: 1
seed: 0                              # of the search's sampling
scheduler: {asha: {grace_period: 1, reduction_factor: 2}}
resources: {num_cpus: 2, driver_cpus: 0.5, max_concurrent_trials: 0}
output_dir: sweeps
```

`load_sweep` refuses, as one `ConfigError` line, an unknown key at any level (naming the closest
valid ones), a malformed value, and any trial config that `load_config` would refuse: every grid
point, and each search dimension at its bounds (or each choice), are loaded before Ray starts.
Ray-free: the Tune side is `fedray.sweep.tune`.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedray.config import RunConfig, load_config
from fedray.config_files import PRESET, conf_dirs, group_choices, group_file, one_line
from fedray.errors import ConfigError

SEARCH_KINDS = ("choice", "uniform", "loguniform", "randint")
_TOP = (
    "name",
    "base",
    "grid",
    "search",
    "num_samples",
    "seed",
    "scheduler",
    "resources",
    "output_dir",
)
_BASE = ("config", "overrides")
_ASHA = ("grace_period", "reduction_factor")
_RESOURCES = (
    "address",
    "num_cpus",
    "object_store_mb",
    "driver_cpus",
    "max_concurrent_trials",
    "strategy",
)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Dimension:
    """One search dimension: `kind` over `values` (the choices, or [low, high])."""

    key: str
    kind: str
    values: tuple[Scalar, ...]

    def probes(self) -> tuple[Scalar, ...]:
        """Values a trial may get that bound what it can be: every choice, or the bounds (a
        randint's high is exclusive)."""
        if self.kind == "randint":
            low, high = self.values
            assert isinstance(low, int) and isinstance(high, int)
            return (low, high - 1)
        return self.values


@dataclass(frozen=True)
class Asha:
    """ASHA early stopping on accuracy (mode max); max_t is the sweep's largest `rounds`."""

    grace_period: int = 1
    reduction_factor: float = 2.0


@dataclass(frozen=True)
class SweepResources:
    address: str | None = None  # a Ray cluster to join, as `fedray run --address`; None: embedded
    num_cpus: int | None = None  # embedded Ray's CPUs (None: all cores)
    object_store_mb: int = 200  # embedded Ray's object store
    driver_cpus: float = 0.5  # each trial's driver bundle (it evaluates each round's model)
    max_concurrent_trials: int = 0  # 0: as many as the CPUs hold
    strategy: str = "PACK"  # of each trial's placement group: PACK | SPREAD | STRICT_PACK


@dataclass(frozen=True)
class SweepSpec:
    name: str
    base: Path | None  # the base YAML (a preset resolved to its file); None: the defaults
    overrides: tuple[str, ...]
    grid: tuple[tuple[str, tuple[Scalar, ...]], ...]
    search: tuple[Dimension, ...] = ()
    num_samples: int = 1
    seed: int = 0
    scheduler: Asha | None = None
    resources: SweepResources = field(default_factory=SweepResources)
    output_dir: str = "sweeps"

    def varied(self) -> list[str]:
        """The config keys trials differ in: the grid's, then the search's."""
        return [k for k, _ in self.grid] + [d.key for d in self.search]

    def grid_points(self) -> list[dict[str, Scalar]]:
        """Every combination of the grid's values, first key slowest."""
        keys = [k for k, _ in self.grid]
        combos = itertools.product(*(values for _, values in self.grid))
        return [dict(zip(keys, combo, strict=True)) for combo in combos]

    def trial_config(self, point: Mapping[str, Any], extra: tuple[str, ...] = ()) -> RunConfig:
        """The run config of the trial at `point` (config key -> value)."""
        return load_config(self.base, [*self.overrides, *overrides_of(point), *extra])


def override(key: str, value: Scalar) -> str:
    """`key=value` as `fedray run` reads it (YAML scalars: true, null, 0.5)."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str) and not _reads_as_string(value):
        text = "'" + value.replace("'", "''") + "'"  # quoted, or YAML reads 1e-3 as a number
    else:
        text = str(value)
    return f"{key}={text}"


def _reads_as_string(text: str) -> bool:
    """Whether `key=text` on the command line gives back `text` (OmegaConf reads its values as
    YAML: 1e-3 is a float, 62842_00000 an int)."""
    try:
        return bool(OmegaConf.from_dotlist([f"k={text}"]).k == text)
    except OmegaConfBaseException:
        return False


def overrides_of(point: Mapping[str, Any]) -> list[str]:
    return [override(k, v) for k, v in point.items()]


def _unknown(keys: Mapping[str, Any], valid: tuple[str, ...], where: str) -> None:
    for key in keys:
        if key not in valid:
            near = difflib.get_close_matches(str(key), valid, n=2)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise ConfigError(
                f"sweep file: unknown key '{where}{key}'{hint}; valid: {', '.join(valid)}"
            )


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"sweep file: '{where}' must be a mapping, got {value!r}")
    return value


def _scalar(value: Any, where: str) -> Scalar:
    if value is not None and not isinstance(value, str | int | float | bool):
        raise ConfigError(f"sweep file: '{where}' takes plain values, got {value!r}")
    return value


def _int(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"sweep file: '{where}' must be an integer >= {low}, got {value!r}")
    return value


def _number(value: Any, where: str, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or (positive and value <= 0):
        raise ConfigError(f"sweep file: '{where}' must be a number > 0, got {value!r}")
    return float(value)


def _config_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ConfigError(f"sweep file: '{where}' keys are config keys (data.alpha), got {key!r}")
    return key


def _base(raw: Any) -> tuple[Path | None, tuple[str, ...]]:
    if isinstance(raw, str):
        raw = {"config": raw}
    base = _mapping(raw, "base")
    _unknown(base, _BASE, "base.")
    overrides = base.get("overrides") or []
    if not isinstance(overrides, list) or not all(
        isinstance(i, str) and "=" in i for i in overrides
    ):
        raise ConfigError(f"sweep file: 'base.overrides' is a list of key=value, got {overrides!r}")
    config = base.get("config")
    if config is None:
        return None, tuple(overrides)
    if not isinstance(config, str) or not config:
        raise ConfigError(f"sweep file: 'base.config' names a preset or a file, got {config!r}")
    path = Path(config)
    if path.suffix not in (".yaml", ".yml") and "/" not in config:
        found = group_file(PRESET, config)
        if found is None:
            where = ", ".join(str(d / PRESET) for d in conf_dirs())
            raise ConfigError(
                f"sweep file: 'base.config': no preset {config!r} in {where} "
                f"(available: {', '.join(group_choices(PRESET)) or 'none'}; "
                "a file's path ends in .yaml)"
            )
        path = found
    elif not path.exists():
        raise ConfigError(f"sweep file: 'base.config': {path} does not exist")
    return path.resolve(), tuple(overrides)


def _grid(raw: Any) -> tuple[tuple[str, tuple[Scalar, ...]], ...]:
    grid = []
    for key, values in _mapping(raw, "grid").items():
        where = f"grid.{_config_key(key, 'grid')}"
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep file: '{where}' is a non-empty list of values")
        grid.append((key, tuple(_scalar(v, where) for v in values)))
    return tuple(grid)


def _dimension(key: str, raw: Any) -> Dimension:
    where = f"search.{key}"
    spec = _mapping(raw, where)
    if len(spec) != 1:
        raise ConfigError(
            f"sweep file: '{where}' is one of {', '.join(SEARCH_KINDS)}: [values], got {raw!r}"
        )
    ((kind, values),) = spec.items()
    _unknown({kind: values}, SEARCH_KINDS, f"{where}.")
    if not isinstance(values, list) or not values:
        raise ConfigError(f"sweep file: '{where}.{kind}' is a non-empty list")
    if kind == "choice":
        return Dimension(key, kind, tuple(_scalar(v, where) for v in values))
    if len(values) != 2:
        raise ConfigError(f"sweep file: '{where}.{kind}' is [low, high], got {values!r}")
    bounds: tuple[int, int] | tuple[float, float]
    if kind == "randint":
        bounds = (_int(values[0], where, -(2**62)), _int(values[1], where, -(2**62)))
    else:
        positive = kind == "loguniform"
        bounds = (_number(values[0], where, positive), _number(values[1], where, positive))
    low, high = bounds
    if not low < high:
        raise ConfigError(f"sweep file: '{where}.{kind}' needs low < high, got {values!r}")
    return Dimension(key, kind, (low, high))


def _asha(raw: Any) -> Asha | None:
    scheduler = _mapping(raw, "scheduler")
    _unknown(scheduler, ("asha",), "scheduler.")
    if "asha" not in scheduler:
        return None
    asha = _mapping(scheduler["asha"], "scheduler.asha")
    _unknown(asha, _ASHA, "scheduler.asha.")
    rf = _number(asha.get("reduction_factor", 2), "scheduler.asha.reduction_factor")
    if rf <= 1:
        raise ConfigError(f"sweep file: 'scheduler.asha.reduction_factor' must be > 1, got {rf}")
    return Asha(_int(asha.get("grace_period", 1), "scheduler.asha.grace_period", 1), rf)


def _resources(raw: Any) -> SweepResources:
    res = _mapping(raw, "resources")
    _unknown(res, _RESOURCES, "resources.")
    d = SweepResources()
    num_cpus = res.get("num_cpus", d.num_cpus)
    address = res.get("address", d.address)
    if address is not None and not isinstance(address, str):
        raise ConfigError(f"sweep file: 'resources.address' is a string, got {address!r}")
    strategy = res.get("strategy", d.strategy)
    if strategy not in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
        raise ConfigError(
            "sweep file: 'resources.strategy' is PACK | SPREAD | STRICT_PACK | STRICT_SPREAD, "
            f"got {strategy!r}"
        )
    return SweepResources(
        address=address,
        num_cpus=None if num_cpus is None else _int(num_cpus, "resources.num_cpus", 1),
        object_store_mb=_int(
            res.get("object_store_mb", d.object_store_mb), "resources.object_store_mb", 80
        ),
        driver_cpus=_number(res.get("driver_cpus", d.driver_cpus), "resources.driver_cpus"),
        max_concurrent_trials=_int(
            res.get("max_concurrent_trials", d.max_concurrent_trials),
            "resources.max_concurrent_trials",
            0,
        ),
        strategy=strategy,
    )


def parse_sweep(data: Any, check: bool = True) -> SweepSpec:
    """The sweep described by `data` (a sweep file's mapping); `check` also loads every trial
    config a grid point or a search bound gives (module docstring)."""
    top = _mapping(data, "the top level")
    _unknown(top, _TOP, "")
    name = top.get("name", "sweep")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"sweep file: 'name' is a file name of letters, digits, '.', '_', '-', got {name!r}"
        )
    base, overrides = _base(top.get("base"))
    grid = _grid(top.get("grid"))
    search = tuple(
        _dimension(_config_key(k, "search"), v)
        for k, v in _mapping(top.get("search"), "search").items()
    )
    both = sorted({k for k, _ in grid} & {d.key for d in search})
    if both:
        raise ConfigError(f"sweep file: {', '.join(both)} is in both grid and search")
    if not grid and not search:
        raise ConfigError("sweep file: nothing varies: give a 'grid' or a 'search'")
    output_dir = top.get("output_dir", "sweeps")
    if not isinstance(output_dir, str) or not output_dir:
        raise ConfigError(f"sweep file: 'output_dir' is a directory, got {output_dir!r}")
    spec = SweepSpec(
        name=name,
        base=base,
        overrides=overrides,
        grid=grid,
        search=search,
        num_samples=_int(top.get("num_samples", 1), "num_samples", 1),
        seed=_int(top.get("seed", 0), "seed", 0),
        scheduler=_asha(top.get("scheduler")),
        resources=_resources(top.get("resources")),
        output_dir=output_dir,
    )
    if check:
        check_trials(spec)
    return spec


def check_trials(spec: SweepSpec) -> list[RunConfig]:
    """Load the config of every grid point with each search dimension at each of its probes
    (other dimensions at their first): a key or value `load_config` refuses names its trial."""
    configs = []
    for point in spec.grid_points():
        first = {d.key: d.probes()[0] for d in spec.search}
        probes = [first] + [{**first, d.key: v} for d in spec.search for v in d.probes()[1:]]
        for probe in probes:
            trial = {**point, **probe}
            try:
                configs.append(spec.trial_config(trial))
            except ConfigError as exc:
                where = ", ".join(override(k, v) for k, v in trial.items())
                raise ConfigError(f"sweep file: the trial {where} cannot run: {exc}") from None
    return configs


def load_sweep(path: str | Path, check: bool = True) -> SweepSpec:
    """The sweep in the YAML file at `path` (see `parse_sweep`)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sweep file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read sweep file {p}: {one_line(exc)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"sweep file {p} is not valid YAML: {one_line(exc)}") from None
    return parse_sweep(data, check)
