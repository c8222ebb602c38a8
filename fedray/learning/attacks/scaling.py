"""`scaling`: boosted update; each attacker multiplies its own update by `boost`.

The model-replacement trick (Bagdasaryan et al. 2020, Bhagoji et al. 2019): scaled by about n / f, a
few updates dominate a plain average. Here the boosted update is the attacker's honestly trained one,
which isolates the effect of magnitude; pair it with poisoned data in a custom attack if needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fedray.learning.attacks.base import Attack, AttackContext, AttackResult
from fedray.learning.errors import AttackError
from fedray.learning.params import scale


@dataclass(frozen=True)
class ScalingConfig:
    boost: float = 10.0

    def __post_init__(self) -> None:
        if self.boost <= 0:
            raise AttackError("scaling: boost must be > 0")


@dataclass(frozen=True)
class Scaling(Attack):
    config: ScalingConfig = field(default_factory=ScalingConfig)
    name: ClassVar[str] = "scaling"

    def craft(self, ctx: AttackContext) -> AttackResult:
        self._require_honest(ctx)
        return AttackResult(tuple(scale(u, self.config.boost) for u in ctx.honest), dict(ctx.state))
