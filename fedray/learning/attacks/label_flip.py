"""`label_flip`: data poisoning; attackers train honestly on relabelled data.

Default mapping is y -> C - 1 - y (as in Allen-Zhu et al. 2020 and Karimireddy et al. 2022); an
explicit source -> target mapping flips only the named classes. The update itself is not altered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from fedray.learning.attacks.base import Attack, AttackContext, AttackResult
from fedray.learning.datasets import Dataset
from fedray.learning.errors import AttackError


@dataclass(frozen=True)
class LabelFlipConfig:
    pairs: tuple[tuple[int, int], ...] = ()  # (source, target); empty means y -> C - 1 - y


def flip_labels(
    y: np.ndarray, num_classes: int, pairs: tuple[tuple[int, int], ...] = ()
) -> np.ndarray:
    if not pairs:
        return (num_classes - 1 - y).astype(np.int64)
    table = np.arange(num_classes)
    for src, dst in pairs:
        if not (0 <= src < num_classes and 0 <= dst < num_classes):
            raise AttackError(f"label_flip: pair {(src, dst)} outside [0, {num_classes})")
        table[src] = dst
    return table[y].astype(np.int64)


@dataclass(frozen=True)
class LabelFlip(Attack):
    config: LabelFlipConfig = field(default_factory=LabelFlipConfig)
    name: ClassVar[str] = "label_flip"

    def poison_data(self, data: Dataset, rng: np.random.Generator) -> Dataset:
        return data.with_labels(flip_labels(data.y, data.num_classes, self.config.pairs))

    def craft(self, ctx: AttackContext) -> AttackResult:
        self._require_honest(ctx)
        return AttackResult(tuple(dict(u) for u in ctx.honest), dict(ctx.state))
