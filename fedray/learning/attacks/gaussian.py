"""`gaussian`: each attacker submits pure noise N(mean, std^2) per coordinate, trains nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from fedray.learning.attacks.base import Attack, AttackContext, AttackResult
from fedray.learning.errors import AttackError


@dataclass(frozen=True)
class GaussianConfig:
    std: float = 1.0
    mean: float = 0.0

    def __post_init__(self) -> None:
        if self.std < 0:
            raise AttackError("gaussian: std must be >= 0")


@dataclass(frozen=True)
class Gaussian(Attack):
    config: GaussianConfig = field(default_factory=GaussianConfig)
    name: ClassVar[str] = "gaussian"
    needs_training: ClassVar[bool] = False

    def craft(self, ctx: AttackContext) -> AttackResult:
        c = self.config
        ups = tuple(
            {
                k: (c.mean + c.std * ctx.rng.standard_normal(v.shape)).astype(np.float32)
                for k, v in ctx.global_params.items()
            }
            for _ in ctx.attackers
        )
        return AttackResult(ups, dict(ctx.state))
