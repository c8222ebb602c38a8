"""`replay`: each attacker records its own honest update of round `source_round` and resubmits
that same update in every later round (a stale, lazy or copied contribution). Before and at
`source_round` it behaves honestly. The recorded updates travel in the explicit attack state
(key "recorded": attacker id -> update), so the attack object stays stateless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fedray.learning.attacks.base import Attack, AttackContext, AttackResult
from fedray.learning.errors import AttackError


@dataclass(frozen=True)
class ReplayConfig:
    source_round: int = 0

    def __post_init__(self) -> None:
        if self.source_round < 0:
            raise AttackError("replay: source_round must be >= 0")


@dataclass(frozen=True)
class Replay(Attack):
    config: ReplayConfig = field(default_factory=ReplayConfig)
    name: ClassVar[str] = "replay"

    def craft(self, ctx: AttackContext) -> AttackResult:
        self._require_honest(ctx)
        recorded = dict(ctx.state.get("recorded", {}))
        ups = []
        for a, honest in zip(ctx.attackers, ctx.honest, strict=True):
            if ctx.round <= self.config.source_round or a not in recorded:
                if ctx.round >= self.config.source_round:
                    recorded[a] = {k: v.copy() for k, v in honest.items()}
                ups.append(dict(honest))
            else:
                ups.append({k: v.copy() for k, v in recorded[a].items()})
        return AttackResult(tuple(ups), {**ctx.state, "recorded": recorded})
