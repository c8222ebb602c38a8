"""A content-addressed blob store for tensor payloads: safetensors files named by their canonical
payload digest, written atomically (temp file, fsync, rename, fsync of the directory), verified on
every read so a corrupted file is an error, never a silently wrong model.

Deliberately ignored: garbage collection and remote fetching (validators serve blobs over Ray).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from fedray.errors import BlobError
from fedray.storage.tensors import Tensors, from_safetensors, tensors_digest, to_safetensors

SUFFIX = ".safetensors"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a crash leaves either the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class BlobStore:
    """Tensor payloads under `<directory>/<hex[:2]>/<hex>.safetensors`."""

    def __init__(self, directory: str | Path, read_only: bool = False) -> None:
        self.directory = Path(directory)
        self.read_only = read_only
        if not read_only:
            self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, digest: bytes) -> Path:
        h = digest.hex()
        return self.directory / h[:2] / (h + SUFFIX)

    def has(self, digest: bytes) -> bool:
        return self.path(digest).exists()

    def put(self, tensors: Tensors) -> bytes:
        """Store `tensors`; returns their digest. Idempotent."""
        digest = tensors_digest(tensors)
        path = self.path(digest)
        if self.read_only:
            raise BlobError(f"blob store {self.directory} is open read-only")
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            atomic_write(path, to_safetensors(tensors))
        return digest

    def get(self, digest: bytes) -> dict[str, np.ndarray]:
        """Load and verify the payload named `digest`."""
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobError(f"no blob {digest.hex()[:16]} in {self.directory}") from None
        tensors = from_safetensors(data)
        if tensors_digest(tensors) != digest:
            raise BlobError(f"blob {digest.hex()[:16]} is corrupt (content hash differs)")
        return tensors

    def get_bytes(self, digest: bytes) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobError(f"no blob {digest.hex()[:16]} in {self.directory}") from None

    def digests(self) -> list[bytes]:
        return sorted(
            bytes.fromhex(p.name[: -len(SUFFIX)]) for p in self.directory.glob("*/*" + SUFFIX)
        )
