"""A content-addressed blob store for tensor payloads: safetensors files named by their canonical
payload digest, written atomically (temp file, fsync, rename, fsync of the directory), verified on
every read so a corrupted file is an error, never a silently wrong model.

`batch()` groups the writes of many blobs (an ingress's batch of updates): each is written to its
temp file at once, and when the batch ends the temp files are synced together (concurrent fsyncs
share the file system's journal commits), renamed, and each directory synced once. Every blob is
durable when the batch returns, as with `put` alone, for a fraction of the cost: one fsync after
another cost 0.3-0.5 ms a blob here, and pinning 50 updates was most of an ingress's time.

Deliberately ignored: garbage collection and remote fetching (validators serve blobs over Ray).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fedray.errors import BlobError
from fedray.storage.tensors import Tensors, from_safetensors, tensors_digest, to_safetensors

SUFFIX = ".safetensors"
SYNC_THREADS = 8  # concurrent fsyncs of a batch's files

_syncing: ThreadPoolExecutor | None = None
_syncing_lock = threading.Lock()


def _sync_pool() -> ThreadPoolExecutor:
    global _syncing
    with _syncing_lock:
        if _syncing is None:
            _syncing = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="fedray-blob-sync")
        return _syncing


def fsync_path(path: Path) -> None:
    """Sync a file or a directory (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a crash leaves either the old file or the whole new one."""
    tmp = _temp_name(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


class _Batch:
    """The blobs written to temp files in one `BlobStore.batch`, by final path."""

    def __init__(self) -> None:
        self.temps: dict[Path, Path] = {}

    def finish(self) -> None:
        """Sync every temp file, rename each to its name, sync each directory once."""
        if not self.temps:
            return
        list(_sync_pool().map(fsync_path, self.temps.values()))
        for path, tmp in self.temps.items():
            os.replace(tmp, path)
        for directory in {path.parent for path in self.temps}:
            fsync_path(directory)
        self.temps.clear()

    def discard(self) -> None:
        for tmp in self.temps.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.temps.clear()


class BlobStore:
    """Tensor payloads under `<directory>/<hex[:2]>/<hex>.safetensors`."""

    def __init__(self, directory: str | Path, read_only: bool = False) -> None:
        self.directory = Path(directory)
        self.read_only = read_only
        self._batches = threading.local()  # a batch belongs to the thread that opened it
        if not read_only:
            self.directory.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group this thread's `put`s: all are durable under their names when the block exits
        normally; on an error none is (their temp files are removed)."""
        if getattr(self._batches, "current", None) is not None:
            yield  # nested: the outer batch finishes the writes
            return
        current = _Batch()
        self._batches.current = current
        try:
            yield
            current.finish()
        except BaseException:
            current.discard()
            raise
        finally:
            self._batches.current = None

    def path(self, digest: bytes) -> Path:
        h = digest.hex()
        return self.directory / h[:2] / (h + SUFFIX)

    def has(self, digest: bytes) -> bool:
        path = self.path(digest)
        current: _Batch | None = getattr(self._batches, "current", None)
        return path.exists() or (current is not None and path in current.temps)

    def put(self, tensors: Tensors, digest: bytes | None = None) -> bytes:
        """Store `tensors`; returns their digest (`digest`: already checked by the caller to be
        theirs, saving a second hashing). Idempotent. Inside `batch()` it is durable when the
        batch ends."""
        digest = tensors_digest(tensors) if digest is None else digest
        if self.read_only:
            raise BlobError(f"blob store {self.directory} is open read-only")
        if self.has(digest):
            return digest
        path = self.path(digest)
        path.parent.mkdir(exist_ok=True)
        current: _Batch | None = getattr(self._batches, "current", None)
        if current is None:
            atomic_write(path, to_safetensors(tensors))
        else:
            tmp = _temp_name(path)
            tmp.write_bytes(to_safetensors(tensors))
            current.temps[path] = tmp
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
