"""Helpers for the aggregation tests: build int32 updates from small integer lists."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from fedray.aggregation.base import ClientDelta


def make_update(
    key: bytes | str, values: Sequence[int] | dict[str, Sequence[int]], n: int = 1
) -> ClientDelta:
    """An update whose tensors hold exactly `values` (raw fixed-point units)."""
    if isinstance(key, str):
        key = key.encode()
    tensors = values if isinstance(values, dict) else {"w": values}
    return ClientDelta(key, {name: np.asarray(v, dtype=np.int32) for name, v in tensors.items()}, n)


def random_updates(
    k: int, shapes: dict[str, tuple[int, ...]], seed: int, scale: float = 0.05
) -> list[ClientDelta]:
    """k random updates (quantized Gaussians, random keys and sample counts)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(k):
        tensors = {
            name: np.rint(rng.standard_normal(shape) * scale * 2**24).astype(np.int32)
            for name, shape in shapes.items()
        }
        out.append(ClientDelta(rng.bytes(8) + bytes([i]), tensors, int(rng.integers(1, 500))))
    return out


@pytest.fixture
def upd() -> Callable[..., ClientDelta]:
    return make_update


@pytest.fixture
def rand_updates() -> Callable[..., list[ClientDelta]]:
    return random_updates
