"""`sign_flip`: each attacker submits -scale times its own honest update.

With f of n clients and plain averaging the aggregate is (n - f - f * scale) / n times the honest
mean, so scale > (n - f) / f reverses the direction of training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fedray.learning.attacks.base import Attack, AttackContext, AttackResult
from fedray.learning.errors import AttackError
from fedray.learning.params import scale


@dataclass(frozen=True)
class SignFlipConfig:
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise AttackError("sign_flip: scale must be > 0")


@dataclass(frozen=True)
class SignFlip(Attack):
    config: SignFlipConfig = field(default_factory=SignFlipConfig)
    name: ClassVar[str] = "sign_flip"

    def craft(self, ctx: AttackContext) -> AttackResult:
        self._require_honest(ctx)
        return AttackResult(
            tuple(scale(u, -self.config.scale) for u in ctx.honest), dict(ctx.state)
        )
