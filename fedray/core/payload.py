"""The canonical digest of a tensor payload (a model or a model update), computed from raw bytes so
the core needs no numpy.

A payload is a set of named tensors. Its digest commits to each tensor's name, dtype (numpy-style
string such as "<i4"), shape and the digest of its little-endian C-order bytes, sorted by name:
`hash_value([[name, dtype, shape, digest(data)], ...])`. Containers (safetensors files, Ray object
store arrays) are transport only; two containers with equal tensors have equal digests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fedray.core.encoding import digest, hash_value
from fedray.errors import EncodingError

ALLOWED_DTYPES = ("<i4", "<i8", "<f4")
"""int32 fixed point is the canonical form; int64 and float32 only for local artefacts."""


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    data: bytes  # little-endian, C order

    def check(self) -> None:
        if self.dtype not in ALLOWED_DTYPES:
            raise EncodingError(
                f"tensor {self.name!r} has dtype {self.dtype}, not one of {ALLOWED_DTYPES}"
            )
        count = 1
        for dim in self.shape:
            if dim < 0:
                raise EncodingError(f"tensor {self.name!r} has a negative dimension")
            count *= dim
        itemsize = int(self.dtype[2:])
        if len(self.data) != count * itemsize:
            raise EncodingError(
                f"tensor {self.name!r} has {len(self.data)} bytes for shape {self.shape}"
            )


def payload_digest(entries: Iterable[TensorEntry]) -> bytes:
    items = sorted(entries, key=lambda e: e.name)
    names = [e.name for e in items]
    if len(set(names)) != len(names):
        raise EncodingError("payload has duplicate tensor names")
    for e in items:
        e.check()
    return hash_value([[e.name, e.dtype, list(e.shape), digest(e.data)] for e in items])
