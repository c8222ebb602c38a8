"""The training shards of a pool's clients, made when first read.

A pool of 5,000 virtual clients trains about 50 of them a round: `ClientShards` maps each of its
clients to its shard without holding them, makes a shard when it is read (`make(k)`: a slice of
the partitioned training set, or a generated Synthetic user) and keeps the last `cache_size` it
made, so one round reads each selected shard once for training and once for its sample count.
Shards set explicitly (an attacker's poisoned data) are held for good.

`PoolShards` is what the driver hands a pool actor (through Ray's object store) instead of letting
it load the data set: its own clients' samples only, cut from the partition the driver made once.
So a pool process neither loads the data set (nor imports its loader: scikit-learn, with scipy and
pandas, is 136 MB of a process's memory) nor holds other clients' samples. Generated populations
(`data=synthetic_users`) are not handed over: each pool generates its own users.

Deliberately ignored: eviction by memory size (shards of one data set are of similar size).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fedray.errors import FedrayError
from fedray.learning.datasets import Dataset
from fedray.learning.errors import DatasetError

DEFAULT_CACHE = 256


class ClientShards(Mapping[int, Dataset]):
    def __init__(
        self,
        clients: Sequence[int],
        make: Callable[[int], Dataset],
        cache_size: int = DEFAULT_CACHE,
    ) -> None:
        self._clients = tuple(clients)
        self._members = frozenset(self._clients)
        self._make = make
        self._cache: OrderedDict[int, Dataset] = OrderedDict()
        self._cache_size = cache_size
        self._held: dict[int, Dataset] = {}

    def __getitem__(self, k: int) -> Dataset:
        if k in self._held:
            return self._held[k]
        if k not in self._members:
            raise KeyError(k)
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        shard = self._make(k)
        self._cache[k] = shard
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return shard

    def __setitem__(self, k: int, shard: Dataset) -> None:
        """Hold `shard` for client `k` instead of making it (poisoned data)."""
        if k not in self._members:
            raise FedrayError(f"client {k} is not among these shards' clients")
        self._held[k] = shard

    def __iter__(self) -> Iterator[int]:
        return iter(self._clients)

    def __len__(self) -> int:
        return len(self._clients)

    @property
    def cached(self) -> int:
        """How many made shards are held now (poisoned ones apart)."""
        return len(self._cache)


@dataclass(frozen=True)
class PoolShards:
    """The training samples of a pool's clients, one client's after another in `clients` order;
    client `clients[j]` has samples `ends[j - 1]:ends[j]`. Plain arrays and ints, so that a pool
    actor can unpickle it (`runtime.hardening.WIRE_MODULES`)."""

    clients: tuple[int, ...]
    ends: tuple[int, ...]
    x: np.ndarray
    y: np.ndarray
    num_classes: int
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.ends) != len(self.clients) or list(self.ends) != sorted(self.ends):
            raise DatasetError("a pool's shards need one increasing end per client")
        if (self.ends[-1] if self.ends else 0) != len(self.y) or len(self.x) != len(self.y):
            raise DatasetError("a pool's shards end where its samples do")

    @classmethod
    def of(
        cls, train: Dataset, indices: Sequence[np.ndarray], clients: Sequence[int]
    ) -> PoolShards:
        """The shards of `clients`, `indices[k]` being client k's samples of `train`."""
        idx = [np.asarray(indices[k], dtype=np.int64) for k in clients]
        joined = np.concatenate(idx) if idx else np.zeros(0, np.int64)
        ends = tuple(int(e) for e in np.cumsum([len(i) for i in idx]))
        groups = None if train.groups is None else train.groups[joined]
        return cls(
            tuple(clients), ends, train.x[joined], train.y[joined], train.num_classes, groups
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def shard(self, client: int) -> Dataset:
        """`client`'s shard, a copy (what `Dataset.subset` of the whole set would give)."""
        j = self.clients.index(client)
        part = slice(self.ends[j - 1] if j else 0, self.ends[j])
        groups = None if self.groups is None else self.groups[part].copy()
        return Dataset(self.x[part].copy(), self.y[part].copy(), self.num_classes, groups)

    def shards(self) -> ClientShards:
        return ClientShards(self.clients, self.shard)
