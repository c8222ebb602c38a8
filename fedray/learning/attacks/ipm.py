"""`ipm`: inner product manipulation (Xie, Koyejo, Gupta, UAI 2020), colluding.

All attackers submit -epsilon times the mean of the honest updates, estimated from their own
honestly trained updates. A small epsilon (0.1 to 0.5) slips past distance-based rules and makes the
aggregate's inner product with the true gradient negative under median/Krum; with f of n attackers,
epsilon > (n - f) / f reverses a plain average.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fedray.learning.attacks.base import (
    Attack,
    AttackContext,
    AttackResult,
    per_coordinate_stats,
    same_for_all,
)
from fedray.learning.errors import AttackError


@dataclass(frozen=True)
class IpmConfig:
    epsilon: float = 0.5

    def __post_init__(self) -> None:
        if self.epsilon <= 0:
            raise AttackError("ipm: epsilon must be > 0")


@dataclass(frozen=True)
class Ipm(Attack):
    config: IpmConfig = field(default_factory=IpmConfig)
    name: ClassVar[str] = "ipm"

    def craft(self, ctx: AttackContext) -> AttackResult:
        self._require_honest(ctx)
        mu, _ = per_coordinate_stats(ctx.honest)
        return AttackResult(same_for_all(ctx, -self.config.epsilon * mu), dict(ctx.state))
