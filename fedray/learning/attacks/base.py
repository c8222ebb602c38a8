"""The one interface every Byzantine client behaviour implements.

A round of an attack, as the caller runs it:
1. `poison_data(data, rng)` once per attacker to get the data it trains on (identity unless the
   attack is data poisoning, e.g. label flip);
2. if `needs_training`, each attacker trains honestly on that data (the caller's `train_local`);
3. `craft(ctx)` turns the attackers' own updates into the updates they submit, all at once, so
   colluding attacks (ALIE, IPM) can pool statistics. Colluders only see their *own* honest updates,
   never the honest clients': that is the realistic threat model of fedray (payloads are served to
   validators only until the round closes).
Attack state that must persist across rounds (replay's recorded update) is passed in and returned
explicitly, never kept in the attack object, so attacks are frozen dataclasses built from a typed
config and safe to share.

Deliberately ignored: model-level (backdoor) objectives, adaptive attacks that read the aggregation
rule's internals, lying about sample counts (the runner decides what `n_samples` to claim).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fedray.learning.datasets import Dataset
from fedray.learning.errors import AttackError
from fedray.learning.params import Params, stack, unflatten


@dataclass(frozen=True)
class AttackContext:
    """What the attackers know in one round.

    honest: each attacker's own honest update this round (in `attackers` order); empty when the
      attack does not need training.
    global_params: the round's global model (public).
    num_clients: participants in the round, attackers included (ALIE's n).
    state: what `craft` returned last round (empty dict in the first round).
    """

    round: int
    attackers: tuple[int, ...]
    honest: tuple[Params, ...]
    global_params: Params
    num_clients: int
    rng: np.random.Generator
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackResult:
    """One submitted update per attacker (in `ctx.attackers` order) and the state for next round."""

    updates: tuple[Params, ...]
    state: dict[str, Any] = field(default_factory=dict)


class Attack(ABC):
    """Base of all attacks; subclasses are frozen dataclasses with a `config` field."""

    name: ClassVar[str]
    needs_training: ClassVar[bool] = True  # whether `ctx.honest` must hold trained updates

    def poison_data(self, data: Dataset, rng: np.random.Generator) -> Dataset:
        """The data an attacker trains on; honest data by default."""
        return data

    @abstractmethod
    def craft(self, ctx: AttackContext) -> AttackResult:
        """The updates the attackers submit this round."""

    def _require_honest(self, ctx: AttackContext) -> None:
        if len(ctx.honest) != len(ctx.attackers) or not ctx.attackers:
            raise AttackError(
                f"{self.name}: need one honest update per attacker, got {len(ctx.honest)} "
                f"for {len(ctx.attackers)} attackers"
            )


def per_coordinate_stats(updates: tuple[Params, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation per coordinate of flattened updates (in the key
    order of `updates[0]`)."""
    m = stack(updates).astype(np.float64)
    return m.mean(axis=0), m.std(axis=0)


def same_for_all(ctx: AttackContext, vec: np.ndarray) -> tuple[Params, ...]:
    """Every attacker submits the same crafted vector (what colluders do); `vec` is laid out like
    `per_coordinate_stats` output, i.e. in the key order of `ctx.honest[0]`."""
    p = unflatten(vec.astype(np.float32), ctx.honest[0])
    return tuple({k: v.copy() for k, v in p.items()} for _ in ctx.attackers)
