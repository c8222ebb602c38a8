"""The training shards of a pool's clients, made when first read.

A pool of 5,000 virtual clients trains about 50 of them a round: `ClientShards` maps each of its
clients to its shard without holding them, makes a shard when it is read (`make(k)`: a slice of
the partitioned training set, or a generated Synthetic user) and keeps the last `cache_size` it
made, so one round reads each selected shard once for training and once for its sample count.
Shards set explicitly (an attacker's poisoned data) are held for good.

Deliberately ignored: eviction by memory size (shards of one data set are of similar size).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence

from fedray.errors import FedrayError
from fedray.learning.datasets import Dataset

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
