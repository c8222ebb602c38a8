"""`free_rider`: claims a reward without training.

mode "zero" submits a zero update (returns the global model unchanged); mode "noise" submits the
global model plus small Gaussian noise as its "trained" model, so the delta is the noise alone
(Lin et al. 2019, "Free-riders in Federated Learning"). The claimed sample count is the runner's
business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from fedray.learning.attacks.base import Attack, AttackContext, AttackResult
from fedray.learning.errors import AttackError
from fedray.learning.params import zeros_like


@dataclass(frozen=True)
class FreeRiderConfig:
    mode: str = "zero"  # zero | noise
    std: float = 1e-3  # noise mode: per-coordinate std of the fake delta

    def __post_init__(self) -> None:
        if self.mode not in ("zero", "noise") or self.std < 0:
            raise AttackError(f"free_rider: bad config {self}")


@dataclass(frozen=True)
class FreeRider(Attack):
    config: FreeRiderConfig = field(default_factory=FreeRiderConfig)
    name: ClassVar[str] = "free_rider"
    needs_training: ClassVar[bool] = False

    def craft(self, ctx: AttackContext) -> AttackResult:
        g = ctx.global_params
        if self.config.mode == "zero":
            ups = tuple(zeros_like(g) for _ in ctx.attackers)
        else:
            ups = tuple(
                {
                    k: (self.config.std * ctx.rng.standard_normal(v.shape)).astype(np.float32)
                    for k, v in g.items()
                }
                for _ in ctx.attackers
            )
        return AttackResult(ups, dict(ctx.state))
