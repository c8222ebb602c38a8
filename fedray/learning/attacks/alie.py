"""`alie`: "A Little Is Enough" (Baruch et al., NeurIPS 2019), colluding.

The attackers estimate the per-coordinate mean mu and standard deviation sigma of honest updates
from their *own* honestly trained updates and all submit mu - z * sigma. z is the paper's z_max:
with s = floor(n / 2 + 1) - f supporters needed for a majority, z = Phi^-1((n - s) / n), the largest
shift that still keeps the crafted value closer to the mean than enough honest values; it hides
inside the spread that median, trimmed mean and Krum accept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import ClassVar

from fedray.learning.attacks.base import (
    Attack,
    AttackContext,
    AttackResult,
    per_coordinate_stats,
    same_for_all,
)
from fedray.learning.errors import AttackError


def alie_z(n: int, f: int) -> float:
    """z_max of Baruch et al. (2019), eq. in section 4: s = floor(n/2 + 1) - f, z = Phi^-1((n-s)/n)."""
    if not 0 < f < n:
        raise AttackError(f"alie: need 0 < f < n, got n={n}, f={f}")
    s = math.floor(n / 2 + 1) - f
    q = (n - s) / n
    if not 0 < q < 1:
        raise AttackError(f"alie: quantile {q} out of (0, 1) for n={n}, f={f}")
    return NormalDist().inv_cdf(q)


@dataclass(frozen=True)
class AlieConfig:
    z: float | None = None  # None: z_max from n and f


@dataclass(frozen=True)
class Alie(Attack):
    config: AlieConfig = field(default_factory=AlieConfig)
    name: ClassVar[str] = "alie"

    def z_for(self, ctx: AttackContext) -> float:
        if self.config.z is not None:
            return self.config.z
        return alie_z(ctx.num_clients, len(ctx.attackers))

    def craft(self, ctx: AttackContext) -> AttackResult:
        self._require_honest(ctx)
        mu, sigma = per_coordinate_stats(ctx.honest)
        return AttackResult(same_for_all(ctx, mu - self.z_for(ctx) * sigma), dict(ctx.state))
