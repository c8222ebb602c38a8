"""Run configuration: OmegaConf structured configs bound to frozen dataclasses.

`load_config(path, overrides)` merges, in order: the dataclass defaults (which are the default run),
an optional YAML file, then `key=value` overrides. An override whose key is a config *group*
(a directory of fedray/conf/ or of $FEDRAY_CONF_DIR: `strategy`, `attack`, `data`, ...) and whose
value names a file in it merges that file into the group, Hydra style (`strategy=krum`);
`preset=minimal` merges a whole run config. Any other override sets one key (`rounds=3`,
`strategy.params.norm_ratio=2.0`). Presets merge first, then other group picks, then single keys,
whatever their order on the command line, so `attack.fraction=0.3 attack=sign_flip` keeps 0.3. Training settings left unset
(`training.epochs`, `training.lr`) take the model's defaults (`MODEL_TRAINING`), resolved here so
a run's saved config.yaml holds the values it ran with. Every mistake (unknown keys, wrong types,
YAML that does not parse, a file that is not UTF-8, a merge of incompatible nodes, a value out of
range: `fedray.config_checks`) is one `ConfigError` line naming the key or file. The schema (the
dataclasses, re-exported here) is `fedray.config_schema`.

Deliberately ignored: Hydra's multirun and interpolation resolvers (Ray Tune sweeps call
`load_config` per trial instead).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedray.config_checks import validate as validate
from fedray.config_extensions import custom_strategies as custom_strategies
from fedray.config_extensions import prepare_imports as prepare_imports
from fedray.config_extensions import register_strategies as register_strategies
from fedray.config_files import (
    explain,
    is_group_pick,
    is_preset_pick,
    load_yaml,
    merge_override,
    one_line,
)
from fedray.config_schema import MLFLOW_MISSING as MLFLOW_MISSING
from fedray.config_schema import MODEL_TRAINING as MODEL_TRAINING
from fedray.config_schema import AttackConfig as AttackConfig
from fedray.config_schema import ChainConfig as ChainConfig
from fedray.config_schema import DataConfig as DataConfig
from fedray.config_schema import FaultsConfig as FaultsConfig
from fedray.config_schema import GovernanceAction as GovernanceAction
from fedray.config_schema import MetricsConfig as MetricsConfig
from fedray.config_schema import ModelConfig as ModelConfig
from fedray.config_schema import PrivacyConfig as PrivacyConfig
from fedray.config_schema import RunConfig as RunConfig
from fedray.config_schema import RuntimeConfig as RuntimeConfig
from fedray.config_schema import StrategyConfig as StrategyConfig
from fedray.config_schema import TrainingConfig as TrainingConfig
from fedray.config_schema import with_model_defaults as with_model_defaults
from fedray.errors import ConfigError


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> RunConfig:
    """The run config: defaults, then the YAML at `path`, then `overrides` (key=value): presets
    first, then other group picks, then single keys, each set in command-line order."""
    ordered = [i for i in overrides if is_preset_pick(i)]
    ordered += [i for i in overrides if is_group_pick(i) and not is_preset_pick(i)]
    ordered += [i for i in overrides if not is_group_pick(i)]
    try:
        cfg: DictConfig = OmegaConf.structured(RunConfig)
        if path is not None:
            cfg = OmegaConf.merge(cfg, load_yaml(Path(path)))  # type: ignore[assignment]
        for item in ordered:
            cfg = merge_override(cfg, item, RunConfig)
        run = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise explain(exc, RunConfig()) from None
    except (ValueError, TypeError, AttributeError) as exc:  # a merge OmegaConf cannot express
        raise ConfigError(f"incompatible config: {one_line(exc)}") from None
    assert isinstance(run, RunConfig)
    run = with_model_defaults(run)
    validate(run)
    return run


def to_yaml(cfg: RunConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
