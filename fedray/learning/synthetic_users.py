"""FedProx Synthetic(alpha, beta) for a population: one user per client, each generated on demand.

`datasets.make_synthetic` draws all users from one random stream, so user k exists only after
users 0..k-1: fine for the paper's 30 users, not for 10,000 clients spread over pools that each
train a handful per round. Here user k is a pure function of (seed, k): its own `Generator`
seeded with `[seed, USER_STREAM, k]` draws u_k, B_k, v_k, W_k, b_k, its sample count and its
samples, so a pool generates exactly the users selected in a round and nothing else, and any
process that generates user k gets the same arrays.

The distributions are the paper's (see `make_synthetic`): u_k ~ N(0, alpha^2), W_k ~ N(u_k, 1),
b_k ~ N(u_k, 1); B_k ~ N(0, beta^2), v_k ~ N(B_k, 1); x ~ N(v_k, diag(j^-1.2));
y = argmax(x W_k + b_k). One deliberate change: a user's sample count int(lognormal(4, 2)) + 50 is
capped at `max_size` (the reference code does not cap it; over 10,000 users its tail reaches
~100,000 samples for one user, and a round's time would be that one user's training).

Each user's samples are split into its own train and test parts (`test_fraction`). The global test
set is the test parts of `eval_users` users drawn once by seed, and the centralized baseline trains
on the training parts of the same users: a documented sample, since generating every user's test
data in the driver would hold the whole population.

Deliberately ignored: the paper's IID variant (use `datasets.make_synthetic` with iid=True).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedray.learning.datasets import Dataset, DataSplit
from fedray.learning.errors import DatasetError

SYNTHETIC_USERS = "synthetic_users"  # the data set's name in a run's config
USER_STREAM = 0x5E5E  # separates the users' streams from other uses of the run seed
EVAL_STREAM = 0xE7A1


@dataclass(frozen=True)
class SyntheticUsers:
    """A population of `num_users` Synthetic(alpha, beta) users."""

    num_users: int
    alpha: float = 1.0
    beta: float = 1.0
    dim: int = 60
    num_classes: int = 10
    size_mean: float = 4.0
    size_sigma: float = 2.0
    min_size: int = 50
    max_size: int = 1000
    test_fraction: float = 0.2
    eval_users: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if (
            self.num_users < 1
            or self.alpha < 0
            or self.beta < 0
            or not 0 < self.test_fraction < 1
            or not 2 <= self.min_size <= self.max_size
            or self.eval_users < 1
        ):
            raise DatasetError(f"invalid synthetic population: {self}")

    @property
    def name(self) -> str:
        return f"synthetic_users_{self.alpha:g}_{self.beta:g}"

    def user(self, k: int) -> tuple[Dataset, Dataset]:
        """User k's (train, test) samples; a pure function of (seed, k)."""
        if not 0 <= k < self.num_users:
            raise DatasetError(f"user {k} outside 0..{self.num_users - 1}")
        rng = np.random.default_rng([self.seed, USER_STREAM, k])
        d, c = self.dim, self.num_classes
        size = int(rng.lognormal(self.size_mean, self.size_sigma)) + self.min_size
        size = min(size, self.max_size)
        u = rng.normal(0.0, self.alpha)
        big_b = rng.normal(0.0, self.beta)
        v = rng.normal(big_b, 1.0, d)
        w, b = rng.normal(u, 1.0, (d, c)), rng.normal(u, 1.0, c)
        sigma_sqrt = np.arange(1, d + 1, dtype=np.float64) ** -0.6  # sqrt of j^-1.2
        x = v + rng.standard_normal((size, d)) * sigma_sqrt
        y = np.argmax(x @ w + b, axis=1).astype(np.int64)
        n_test = max(1, int(round(self.test_fraction * size)))
        test = np.zeros(size, bool)
        test[rng.permutation(size)[:n_test]] = True
        x32, groups = x.astype(np.float32), np.full(size, k, np.int64)
        return (
            Dataset(x32[~test], y[~test], c, groups[~test]),
            Dataset(x32[test], y[test], c, groups[test]),
        )

    def train(self, k: int) -> Dataset:
        return self.user(k)[0]

    def evaluation_users(self) -> np.ndarray:
        """The users whose test parts form the global test set (sorted, drawn once by seed)."""
        count = min(self.eval_users, self.num_users)
        rng = np.random.default_rng([self.seed, EVAL_STREAM])
        return np.sort(rng.choice(self.num_users, count, replace=False))

    def evaluation_split(self) -> DataSplit:
        """Train and test parts of the evaluation users (the baseline's data and the test set)."""
        parts = [self.user(int(k)) for k in self.evaluation_users()]
        return DataSplit(self.name, _concat([p[0] for p in parts]), _concat([p[1] for p in parts]))


def _concat(parts: list[Dataset]) -> Dataset:
    groups = [p.groups for p in parts if p.groups is not None]
    return Dataset(
        np.concatenate([p.x for p in parts]),
        np.concatenate([p.y for p in parts]),
        parts[0].num_classes,
        np.concatenate(groups) if len(groups) == len(parts) else None,
    )
