"""Model parameters as plain numpy: `Params` = ordered `dict[str, np.ndarray]` of float32.

Keys are torch `state_dict` names of the model's floating-point state: its parameters, then its
float buffers such as BatchNorm's running statistics (`fedray.learning.models.named_state`). Everything outside torch (attacks, quantization, aggregation, hashing) speaks this
type, so it stays serializable and zero-copy in Ray. Two dicts have the same layout when they hold
the same names with the same shapes, in any order (fedray.aggregation returns names sorted);
helpers follow the key order of their first argument. Deliberately ignored: dtypes other than
float32, nested structures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fedray.learning.errors import ModelError

Params = dict[str, np.ndarray]


def check_layout(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> None:
    """Raise `ModelError` unless `a` and `b` have the same names and shapes (order may differ)."""
    if set(a) != set(b):
        raise ModelError(f"parameter names differ: {sorted(a)} vs {sorted(b)}")
    for k in a:
        if a[k].shape != b[k].shape:
            raise ModelError(f"shape of {k!r} differs: {a[k].shape} vs {b[k].shape}")


def num_values(p: Mapping[str, np.ndarray]) -> int:
    return int(sum(v.size for v in p.values()))


def flatten(p: Mapping[str, np.ndarray], order: Sequence[str] | None = None) -> np.ndarray:
    """Concatenate all tensors (in `order`, default the key order of `p`) into one float32 vector."""
    keys = list(p) if order is None else list(order)
    return np.concatenate([np.asarray(p[k], dtype=np.float32).ravel() for k in keys])


def unflatten(vec: np.ndarray, like: Mapping[str, np.ndarray]) -> Params:
    """Inverse of `flatten`: cut `vec` into tensors with the names and shapes of `like`."""
    if vec.ndim != 1 or vec.size != num_values(like):
        raise ModelError(f"vector of shape {vec.shape} does not fit {num_values(like)} values")
    out: Params = {}
    i = 0
    for k, v in like.items():
        out[k] = vec[i : i + v.size].reshape(v.shape).astype(np.float32, copy=True)
        i += v.size
    return out


def stack(ps: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
    """(len(ps), D) float32 matrix of flattened parameter dicts, which must share one layout;
    columns follow the key order of `ps[0]`."""
    if not ps:
        raise ModelError("cannot stack an empty sequence of parameters")
    for p in ps[1:]:
        check_layout(ps[0], p)
    order = list(ps[0])
    return np.stack([flatten(p, order) for p in ps])


def add(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> Params:
    check_layout(a, b)
    return {k: (a[k] + b[k]).astype(np.float32) for k in a}


def sub(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> Params:
    check_layout(a, b)
    return {k: (a[k] - b[k]).astype(np.float32) for k in a}


def scale(a: Mapping[str, np.ndarray], s: float) -> Params:
    return {k: (v * np.float32(s)).astype(np.float32) for k, v in a.items()}


def zeros_like(a: Mapping[str, np.ndarray]) -> Params:
    return {k: np.zeros(v.shape, np.float32) for k, v in a.items()}


def l2_norm(a: Mapping[str, np.ndarray]) -> float:
    return float(np.sqrt(sum(float(np.dot(v.ravel(), v.ravel())) for v in a.values())))
