"""Tensor payloads as numpy arrays: canonical digest, safetensors bytes, and validation of untrusted
payloads in the order size, hash, dtype, shape, finiteness.

Nothing here unpickles: safetensors is a header plus raw buffers, parsed by the safetensors library,
and numpy arrays arrive as plain buffers. The digest is `fedray.core.payload.payload_digest`, so it is
independent of the container.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import safetensors.numpy

from fedray.core.payload import TensorEntry, payload_digest
from fedray.errors import (
    PayloadDtypeError,
    PayloadHashError,
    PayloadNonFiniteError,
    PayloadShapeError,
    PayloadSizeError,
    PayloadValidationError,
)

Tensors = Mapping[str, np.ndarray]


def canonical_array(array: np.ndarray) -> np.ndarray:
    """C-contiguous, little-endian copy-if-needed of `array`."""
    a = np.ascontiguousarray(array)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a


def to_entries(tensors: Tensors) -> list[TensorEntry]:
    entries = []
    for name, array in tensors.items():
        a = canonical_array(np.asarray(array))
        entries.append(
            TensorEntry(name, a.dtype.str.replace("|", "<"), tuple(a.shape), a.tobytes())
        )
    return entries


def tensors_digest(tensors: Tensors) -> bytes:
    """The canonical payload digest of named arrays."""
    return payload_digest(to_entries(tensors))


def nbytes(tensors: Tensors) -> int:
    return int(sum(np.asarray(a).nbytes for a in tensors.values()))


def to_safetensors(tensors: Tensors) -> bytes:
    return safetensors.numpy.save({k: canonical_array(np.asarray(v)) for k, v in tensors.items()})


MAX_HEADER_BYTES = 1 << 20  # safetensors' JSON header (names, dtypes, shapes, offsets)


def from_safetensors(data: bytes, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Parse safetensors bytes (no pickle). `max_bytes` bounds the tensor data, as it bounds a
    payload's arrays; the header is bounded on its own (`MAX_HEADER_BYTES`). Both are checked
    before parsing."""
    if max_bytes is not None:
        if len(data) < 8:
            raise PayloadValidationError("not a safetensors payload: shorter than its header size")
        header = int.from_bytes(bytes(data[:8]), "little")
        if header > MAX_HEADER_BYTES:
            raise PayloadSizeError(
                f"safetensors header has {header} bytes, limit {MAX_HEADER_BYTES}"
            )
        if len(data) - 8 - header > max_bytes:
            raise PayloadSizeError(
                f"payload has {len(data) - 8 - header} bytes of tensor data, limit {max_bytes}"
            )
    try:
        return dict(safetensors.numpy.load(bytes(data)))
    except Exception as exc:  # the parser raises its own error types for malformed input
        raise PayloadValidationError(f"not a safetensors payload: {exc}") from None


@dataclass(frozen=True)
class TensorSpec:
    """Expected layout of a payload: name -> (dtype string, shape)."""

    layout: Mapping[str, tuple[str, tuple[int, ...]]]

    @staticmethod
    def of(tensors: Tensors) -> TensorSpec:
        return TensorSpec(
            {k: (np.asarray(v).dtype.str, tuple(np.shape(v))) for k, v in tensors.items()}
        )

    @property
    def nbytes(self) -> int:
        return sum(
            np.dtype(dt).itemsize * int(np.prod(shape)) for dt, shape in self.layout.values()
        )


def validate_payload(
    tensors: Tensors,
    expected_hash: bytes,
    spec: TensorSpec,
    max_bytes: int,
    int_bound: int | None = None,
) -> dict[str, np.ndarray]:
    """Check an untrusted payload in order: size, hash, dtype, shape, finiteness (and, for integer
    fixed point, |value| <= int_bound). Returns the arrays as canonical numpy arrays."""
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(value, np.ndarray):
            raise PayloadDtypeError(f"tensor {name!r} is a {type(value).__name__}, not an ndarray")
        arrays[name] = value
    size = nbytes(arrays)
    if size > max_bytes:  # 1. size
        raise PayloadSizeError(f"payload has {size} bytes, limit {max_bytes}")
    try:
        got = tensors_digest(arrays)
    except Exception as exc:
        raise PayloadDtypeError(f"payload cannot be hashed canonically: {exc}") from None
    if got != expected_hash:  # 2. hash
        raise PayloadHashError(
            f"payload digest {got.hex()[:16]} differs from the signed hash {expected_hash.hex()[:16]}"
        )
    if set(arrays) != set(spec.layout):
        missing, extra = set(spec.layout) - set(arrays), set(arrays) - set(spec.layout)
        raise PayloadShapeError(
            f"tensor names differ: missing {sorted(missing)}, extra {sorted(extra)}"
        )
    for name, array in arrays.items():  # 3. dtype
        want_dtype, _ = spec.layout[name]
        if array.dtype.str != want_dtype:
            raise PayloadDtypeError(
                f"tensor {name!r} has dtype {array.dtype.str}, expected {want_dtype}"
            )
    for name, array in arrays.items():  # 4. shape
        _, want_shape = spec.layout[name]
        if tuple(array.shape) != tuple(want_shape):
            raise PayloadShapeError(
                f"tensor {name!r} has shape {array.shape}, expected {want_shape}"
            )
    for name, array in arrays.items():  # 5. finiteness / range
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise PayloadNonFiniteError(f"tensor {name!r} holds NaN or infinite values")
        out_of_range = (
            int_bound is not None
            and array.dtype.kind == "i"
            and array.size
            and int(np.abs(array.astype(np.int64)).max()) > int_bound
        )
        if out_of_range:
            raise PayloadNonFiniteError(f"tensor {name!r} is outside the fixed-point range")
    return {k: canonical_array(v) for k, v in arrays.items()}
