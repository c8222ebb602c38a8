"""`none`: attackers behave honestly. The control row of every robustness table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fedray.learning.attacks.base import Attack, AttackContext, AttackResult


@dataclass(frozen=True)
class NoAttackConfig:
    pass


@dataclass(frozen=True)
class NoAttack(Attack):
    config: NoAttackConfig = field(default_factory=NoAttackConfig)
    name: ClassVar[str] = "none"

    def craft(self, ctx: AttackContext) -> AttackResult:
        self._require_honest(ctx)
        return AttackResult(tuple(dict(u) for u in ctx.honest), dict(ctx.state))
