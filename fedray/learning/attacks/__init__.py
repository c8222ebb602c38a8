"""Byzantine client behaviours behind one interface (`Attack`, see base.py), built by name.

    attack = make_attack("alie")                      # default config
    attack = make_attack("sign_flip", {"scale": 4.0}) # or a SignFlipConfig

Owns the name -> (class, config class) registry. Deliberately ignored: which clients are attackers
and what sample count they claim (the caller's choice).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from fedray.learning.attacks.alie import Alie, AlieConfig, alie_z
from fedray.learning.attacks.base import Attack, AttackContext, AttackResult
from fedray.learning.attacks.free_rider import FreeRider, FreeRiderConfig
from fedray.learning.attacks.gaussian import Gaussian, GaussianConfig
from fedray.learning.attacks.honest import NoAttack, NoAttackConfig
from fedray.learning.attacks.ipm import Ipm, IpmConfig
from fedray.learning.attacks.label_flip import LabelFlip, LabelFlipConfig, flip_labels
from fedray.learning.attacks.replay import Replay, ReplayConfig
from fedray.learning.attacks.scaling import Scaling, ScalingConfig
from fedray.learning.attacks.sign_flip import SignFlip, SignFlipConfig
from fedray.learning.errors import AttackError

ATTACKS: dict[str, tuple[type[Attack], type]] = {
    cls.name: (cls, cfg)
    for cls, cfg in [
        (NoAttack, NoAttackConfig),
        (LabelFlip, LabelFlipConfig),
        (SignFlip, SignFlipConfig),
        (Gaussian, GaussianConfig),
        (Scaling, ScalingConfig),
        (Alie, AlieConfig),
        (Ipm, IpmConfig),
        (FreeRider, FreeRiderConfig),
        (Replay, ReplayConfig),
    ]
}


def make_attack(name: str, config: Any = None) -> Attack:
    """Build attack `name` from its typed config, a mapping of its fields, or None (defaults)."""
    if name not in ATTACKS:
        near = difflib.get_close_matches(name, ATTACKS, n=1)
        hint = f"did you mean {near[0]}? " if near else ""
        raise AttackError(f"unknown attack {name!r}; {hint}known: {', '.join(ATTACKS)}")
    cls, cfg_cls = ATTACKS[name]
    if config is None:
        config = cfg_cls()
    elif isinstance(config, Mapping):
        fields = {f.name for f in dataclasses.fields(cfg_cls)}
        unknown = set(config) - fields
        if unknown:
            raise AttackError(f"{name}: unknown config keys {sorted(unknown)}")
        config = cfg_cls(**config)
    elif not isinstance(config, cfg_cls):
        raise AttackError(f"{name}: config must be {cfg_cls.__name__}, got {type(config).__name__}")
    return cls(config=config)  # type: ignore[call-arg]


__all__ = [
    "ATTACKS",
    "Alie",
    "AlieConfig",
    "Attack",
    "AttackContext",
    "AttackResult",
    "FreeRider",
    "FreeRiderConfig",
    "Gaussian",
    "GaussianConfig",
    "Ipm",
    "IpmConfig",
    "LabelFlip",
    "LabelFlipConfig",
    "NoAttack",
    "NoAttackConfig",
    "Replay",
    "ReplayConfig",
    "Scaling",
    "ScalingConfig",
    "SignFlip",
    "SignFlipConfig",
    "alie_z",
    "flip_labels",
    "make_attack",
]
