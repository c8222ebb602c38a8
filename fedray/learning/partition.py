"""Seeded partitioners: how a training set is divided among federated clients.

Owns four schemes, each a pure function of labels (or groups) and a numpy `Generator`:
- `iid`: a random permutation cut into near-equal parts.
- `dirichlet`: label skew of NIID-Bench (Li et al. 2021, "Federated Learning on Non-IID Data Silos"):
  per class, proportions ~ Dir(alpha) over clients, clients already holding >= N/n samples get none
  of the class, and the whole draw is repeated until every client has at least `min_size` samples.
- `shards`: pathological skew with exactly k distinct classes per client (NIID-Bench's "#C=k", with
  classes dealt cyclically over a shuffled class order so that every class has an owner and no
  sample is dropped); each class's samples are split evenly among its owners.
- `natural`: one client per natural group (the Synthetic users).
Every scheme assigns every training sample to exactly one client. `summarize` reports samples and
labels per client.

Deliberately ignored: quantity skew and feature skew schemes, test-set partitioning (evaluation uses
the global test set), client sampling per round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedray.learning.datasets import DataSplit, FederatedData
from fedray.learning.errors import PartitionError

SCHEMES = ("iid", "dirichlet", "shards", "natural")


@dataclass(frozen=True)
class PartitionConfig:
    scheme: str = "iid"  # iid | dirichlet | shards | natural
    num_clients: int = 20  # ignored by natural (one client per group)
    alpha: float = 0.5  # dirichlet concentration: smaller is more skewed
    min_size: int = 10  # dirichlet: redraw until every client has this many samples
    classes_per_client: int = 2  # shards
    seed: int = 0
    max_draws: int = 1000  # dirichlet: give up (PartitionError) after this many redraws


def iid(n: int, num_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    if not 1 <= num_clients <= n:
        raise PartitionError(f"cannot split {n} samples among {num_clients} clients")
    return [np.sort(p) for p in np.array_split(rng.permutation(n), num_clients)]


def dirichlet(
    y: np.ndarray,
    num_clients: int,
    alpha: float,
    rng: np.random.Generator,
    *,
    num_classes: int | None = None,
    min_size: int = 10,
    max_draws: int = 1000,
) -> list[np.ndarray]:
    """NIID-Bench label-skew partition (`partition_data(..., "noniid-labeldir")`)."""
    n = len(y)
    if alpha <= 0 or num_clients < 1 or min_size * num_clients > n:
        raise PartitionError(
            f"dirichlet: bad alpha={alpha}, clients={num_clients}, min_size={min_size}"
        )
    classes = int(num_classes if num_classes is not None else y.max() + 1)
    by_class = [np.flatnonzero(y == c) for c in range(classes)]
    for _ in range(max_draws):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        sizes = np.zeros(num_clients, np.int64)
        for idx_c in by_class:
            idx_c = rng.permutation(idx_c)
            p = rng.dirichlet(np.full(num_clients, alpha))
            # Balance trick of NIID-Bench: clients at or above the mean size get no more samples.
            p = p * (sizes < n / num_clients)
            if p.sum() == 0:  # only when nothing is left to assign (empty class)
                p = np.full(num_clients, 1.0)
            p = p / p.sum()
            cuts = (np.cumsum(p) * len(idx_c)).astype(np.int64)[:-1]
            for k, chunk in enumerate(np.split(idx_c, cuts)):
                parts[k].append(chunk)
                sizes[k] += len(chunk)
        if sizes.min() >= min_size:
            return [np.sort(np.concatenate(p)) for p in parts]
    raise PartitionError(f"dirichlet: no draw gave every client >= {min_size} samples")


def shards(
    y: np.ndarray,
    num_clients: int,
    classes_per_client: int,
    rng: np.random.Generator,
    *,
    num_classes: int | None = None,
) -> list[np.ndarray]:
    """Exactly `classes_per_client` distinct classes per client; every sample assigned once."""
    classes = int(num_classes if num_classes is not None else y.max() + 1)
    k = classes_per_client
    if not 1 <= k <= classes or num_clients * k < classes:
        raise PartitionError(f"shards: cannot give {num_clients} clients {k} of {classes} classes")
    order = rng.permutation(classes)
    # Client i takes k consecutive classes of the cyclic order: distinct since k <= classes, and
    # every class is taken since num_clients * k >= classes.
    owned = [order[(i * k + np.arange(k)) % classes] for i in range(num_clients)]
    owners: list[list[int]] = [[] for _ in range(classes)]
    for i, cs in enumerate(owned):
        for c in cs:
            owners[int(c)].append(i)
    parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
    for c in range(classes):
        idx_c = rng.permutation(np.flatnonzero(y == c))
        if len(idx_c) < len(owners[c]):
            raise PartitionError(f"shards: class {c} has fewer samples than owners")
        for i, chunk in zip(owners[c], np.array_split(idx_c, len(owners[c])), strict=True):
            parts[i].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def natural(groups: np.ndarray) -> list[np.ndarray]:
    """One client per natural group, in group-id order (empty groups are skipped)."""
    return [np.flatnonzero(groups == g) for g in np.unique(groups)]


def partition(split: DataSplit, cfg: PartitionConfig) -> FederatedData:
    """Divide `split.train` among clients by `cfg`; deterministic given `cfg.seed`."""
    rng = np.random.default_rng(cfg.seed)
    y = split.train.y
    if cfg.scheme == "iid":
        parts = iid(len(y), cfg.num_clients, rng)
    elif cfg.scheme == "dirichlet":
        parts = dirichlet(
            y,
            cfg.num_clients,
            cfg.alpha,
            rng,
            num_classes=split.num_classes,
            min_size=cfg.min_size,
            max_draws=cfg.max_draws,
        )
    elif cfg.scheme == "shards":
        parts = shards(
            y, cfg.num_clients, cfg.classes_per_client, rng, num_classes=split.num_classes
        )
    elif cfg.scheme == "natural":
        if split.train.groups is None:
            raise PartitionError(f"{split.name} has no natural groups")
        parts = natural(split.train.groups)
    else:
        raise PartitionError(f"unknown scheme {cfg.scheme!r}; known: {', '.join(SCHEMES)}")
    return FederatedData(split, tuple(parts), cfg.scheme)


@dataclass(frozen=True)
class PartitionSummary:
    """counts[k, c] = samples of class c held by client k."""

    counts: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        return self.counts.sum(axis=1)

    @property
    def classes_per_client(self) -> np.ndarray:
        return (self.counts > 0).sum(axis=1)

    def label_distributions(self) -> np.ndarray:
        return self.counts / np.maximum(self.sizes[:, None], 1)

    def mean_tv_to_global(self) -> float:
        """Mean total-variation distance of each client's label distribution from the pooled one:
        0 for a perfect IID split, up to 1 for disjoint labels."""
        glob = self.counts.sum(axis=0) / max(self.counts.sum(), 1)
        return float(0.5 * np.abs(self.label_distributions() - glob).sum(axis=1).mean())

    def to_markdown(self) -> str:
        head = "| client | samples | classes | " + " | ".join(map(str, range(self.counts.shape[1])))
        rule = "|---" * (3 + self.counts.shape[1]) + "|"
        rows = [
            f"| {k} | {self.sizes[k]} | {self.classes_per_client[k]} | "
            + " | ".join(str(v) for v in self.counts[k])
            + " |"
            for k in range(len(self.counts))
        ]
        return "\n".join([head + " |", rule, *rows])


def summarize(fed: FederatedData) -> PartitionSummary:
    y, c = fed.split.train.y, fed.split.num_classes
    counts = np.stack([np.bincount(y[idx], minlength=c) for idx in fed.client_indices])
    return PartitionSummary(counts)
