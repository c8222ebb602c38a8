"""A content-addressed blob store for tensor payloads, named by their canonical payload digest and
verified on every read from disk, so a corrupted blob is an error, never a silently wrong model.
The blobs a store wrote lately (up to `RECENT_BYTES`) it serves once from memory, unhashed:
those bytes never went through the disk (a validator reads back the updates its hosted ingress
pinned when their round closes).

Two layouts, both read by every store:
- a blob `put` alone is its own safetensors file, `<dir>/<hex[:2]>/<hex>.safetensors`, written
  atomically (temp file, fsync, rename, fsync of the directory);
- the blobs `put` inside one `batch()` (an ingress's batch of updates) go into ONE pack file,
  `<dir>/packs/<random>.pack` (format: `storage/packs.py`), synced once, renamed and its folder
  synced once when the batch ends. Creating a file per update was about half of an ingress's CPU
  (ext4 inode allocation). A blob over `PACK_MAX_BLOB` keeps its own file even in a batch (temp
  file synced with the pack, renamed after): for it, packing brought nothing measurable.

Every blob of a batch is durable when `batch()` returns, as with `put` alone; on an error inside
it none is visible. The store keeps an index of the packed blobs (digest -> pack, offset, length),
built when it opens by reading each pack's index and extended by each batch. A store that misses
a digest reads the packs announced since (another process's store may have written it: the
validator reads what its ingress pins), so a miss costs a `stat` of the pack log, not a listing.
The index is mutated under a lock and read without one (a dict lookup is atomic).

Deliberately ignored: garbage collection and remote fetching (validators serve blobs over Ray),
temp files left behind by a crash (never read: their names are not blob or pack names).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedray.errors import BlobError, PayloadValidationError
from fedray.storage import packs
from fedray.storage.tensors import Tensors, from_safetensors, tensors_digest, to_safetensors

SUFFIX = ".safetensors"
PACKS = "packs"
# bytes; a larger blob keeps its own file even in a batch. Pinning a batch packed against one
# file a blob (experiments/bench_blob_pack.py, ext4): 65% less wall time at 19 KB, 12-23% at 1-2
# MiB, within noise from 4 MiB (-3% to +5%): there one more file costs little beside its bytes,
# and its own file keeps a pack (what a damaged file loses) to small blobs.
PACK_MAX_BLOB = 4 << 20
SYNC_THREADS = 8  # concurrent fsyncs of a batch's files
# bytes of the blobs a store wrote lately and nobody has read yet, kept in memory: a validator
# reads back every update its (hosted) ingress pinned once, when the round closes, and re-reading
# and re-hashing them from disk was about a tenth of its CPU at 100 updates a round. A blob leaves
# the memory when it is first read, so what stays resident is about a round's updates; a blob over
# a quarter of the bound is never kept
RECENT_BYTES = 8 << 20

_syncing: ThreadPoolExecutor | None = None
_syncing_lock = threading.Lock()


def _sync_pool() -> ThreadPoolExecutor:
    global _syncing
    with _syncing_lock:
        if _syncing is None:
            _syncing = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="fedray-blob-sync")
        return _syncing


def fsync_path(path: str | Path) -> None:
    """Sync a file or a directory (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(path: str | Path) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so a crash leaves either the old file or the whole new one."""
    tmp = _temp_name(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(os.path.dirname(path))


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where a packed blob lies."""

    pack: str
    offset: int
    length: int


class _Recent:
    """The safetensors bytes of the blobs a store wrote lately and nobody has read yet, up to
    `limit` bytes (the least recently written out first), each handed out once. They never went
    through the disk, so they are served without the digest check a read from disk gets."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._blobs: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def keeps(self, size: int) -> bool:
        """Whether a blob of `size` bytes would be kept: one model must not push out a round's
        updates."""
        return size <= self.limit // 4

    def add(self, digest: bytes, data: bytes) -> None:
        if not self.keeps(len(data)):
            return
        with self._lock:
            if digest in self._blobs:
                return
            self._blobs[digest] = data
            self._bytes += len(data)
            while self._bytes > self.limit:
                _, old = self._blobs.popitem(last=False)
                self._bytes -= len(old)

    def take(self, digest: bytes) -> bytes | None:
        with self._lock:
            data = self._blobs.pop(digest, None)
            if data is not None:
                self._bytes -= len(data)
            return data


class _Batch:
    """The blobs of one `BlobStore.batch`: the pack being written, and the large blobs' temp
    files by final path."""

    def __init__(self, packs_folder: str) -> None:
        self.packs_folder = packs_folder
        self.pack: packs.PackWriter | None = None
        self.temps: dict[str, str] = {}
        self.written: list[tuple[bytes, bytes]] = []  # (digest, bytes) of the blobs to remember

    def holds(self, digest: bytes, file: str) -> bool:
        return (self.pack is not None and digest in self.pack.entries) or file in self.temps

    def add_packed(self, digest: bytes, data: bytes) -> None:
        if self.pack is None:
            self.pack = packs.PackWriter(self.packs_folder)
        self.pack.add(digest, data)

    def finish(self) -> None:
        """Sync the pack and every temp file, rename each to its name, sync each folder once,
        then announce the pack to stores in other processes."""
        pack = self.pack
        if pack is not None:
            pack.seal()
        synced = [*self.temps.values(), *([pack.temp] if pack is not None else [])]
        if len(synced) > 1:
            list(_sync_pool().map(fsync_path, synced))
        elif synced:
            fsync_path(synced[0])
        for path, tmp in self.temps.items():
            os.replace(tmp, path)
        if pack is not None:
            os.replace(pack.temp, pack.path)
        folders = {os.path.dirname(path) for path in self.temps}
        folders |= {self.packs_folder} if pack is not None else set()
        for folder in folders:
            fsync_path(folder)
        if pack is not None:  # on an error, `discard` takes the pack back, named or not
            packs.announce(self.packs_folder, pack.name)

    def discard(self) -> None:
        for tmp in self.temps.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.temps.clear()
        if self.pack is not None:
            self.pack.discard()
            self.pack = None


class BlobStore:
    """Tensor payloads under `directory` (layouts: the module docstring).

    Paths on the pinning path are plain strings: pathlib's objects cost more than the stat they
    name, for every payload an ingress pins."""

    def __init__(
        self, directory: str | Path, read_only: bool = False, recent_bytes: int = RECENT_BYTES
    ) -> None:
        self.directory = Path(directory)
        self._root = str(self.directory)
        self._packs = os.path.join(self._root, PACKS)
        self.read_only = read_only
        self._batches = threading.local()  # a batch belongs to the thread that opened it
        self._lock = threading.Lock()  # serializes mutations of the pack index
        self._packed: dict[bytes, _Slot] = {}
        self._pack_names: set[str] = set()
        self._recent = _Recent(recent_bytes)
        if not read_only:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not os.path.isdir(self._packs):
                with contextlib.suppress(FileExistsError):
                    os.mkdir(self._packs)
                fsync_path(self._root)  # the folder is durable before any pack in it
        self._log_seen = packs.log_size(self._packs)  # before listing: no pack falls between
        try:
            names = [n for n in os.listdir(self._packs) if packs.is_pack_name(n)]
        except FileNotFoundError:  # read-only, before any batch
            names = []
        with self._lock:
            self._index(names)

    def _index(self, names: list[str]) -> None:
        """Read the index of each pack in `names` not read yet (lock held)."""
        for name in names:
            if name in self._pack_names:
                continue
            path = os.path.join(self._packs, name)
            try:
                index = packs.read_index(path)
            except FileNotFoundError:  # taken back by a writer whose announcement failed
                continue
            self._pack_names.add(name)  # a pack is immutable: an untrusted one stays so
            for digest, (offset, length) in (index or {}).items():
                if digest not in self._packed:
                    self._packed[digest] = _Slot(path, offset, length)

    def _refresh(self) -> None:
        """Index the packs announced since this store last looked (by another process's store,
        or by another thread's, which already indexed its own)."""
        size = packs.log_size(self._packs)
        if size == self._log_seen:
            return
        with self._lock:
            if size < self._log_seen:  # the log was replaced: read it again from the start
                self._log_seen = 0
            names, seen = packs.read_names(self._packs, self._log_seen)
            self._index(names)
            self._log_seen = seen  # only now: a thread that finds the log read finds its packs

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group this thread's `put`s into one pack: all are durable when the block exits
        normally; on an error none is (the pack's temp file is removed)."""
        if getattr(self._batches, "current", None) is not None:
            yield  # nested: the outer batch finishes the writes
            return
        current = _Batch(self._packs)
        self._batches.current = current
        try:
            yield
            current.finish()
        except BaseException:
            current.discard()
            raise
        finally:
            self._batches.current = None
        for digest, data in current.written:  # durable now
            self._recent.add(digest, data)
        if current.pack is not None:
            with self._lock:
                self._pack_names.add(current.pack.name)
                for digest, (offset, length) in current.pack.entries.items():
                    self._packed.setdefault(digest, _Slot(current.pack.path, offset, length))

    def _file(self, digest: bytes) -> str:
        h = digest.hex()
        return os.path.join(self._root, h[:2], h + SUFFIX)

    def path(self, digest: bytes) -> Path:
        """Where the blob `digest` lies in the one-file layout (a blob `put` outside a batch, or
        a large one); a packed blob lies in its pack instead."""
        return Path(self._file(digest))

    def has(self, digest: bytes) -> bool:
        return self._has(digest, self._file(digest))

    def _has(self, digest: bytes, file: str) -> bool:
        if digest in self._packed:
            return True
        current: _Batch | None = getattr(self._batches, "current", None)
        if current is not None and current.holds(digest, file):
            return True
        if os.path.exists(file):
            return True
        self._refresh()
        return digest in self._packed

    def put(self, tensors: Tensors, digest: bytes | None = None) -> bytes:
        """Store `tensors`; returns their digest (`digest`: already checked by the caller to be
        theirs, saving a second hashing). Idempotent. Inside `batch()` it is durable when the
        batch ends."""
        digest = tensors_digest(tensors) if digest is None else digest
        if self.read_only:
            raise BlobError(f"blob store {self.directory} is open read-only")
        file = self._file(digest)
        if self._has(digest, file):
            return digest
        data = to_safetensors(tensors)
        current: _Batch | None = getattr(self._batches, "current", None)
        if current is not None and self._recent.keeps(len(data)):
            current.written.append((digest, data))  # held until the batch ends: small ones only
        if current is not None and len(data) <= PACK_MAX_BLOB:
            current.add_packed(digest, data)
            return digest
        tmp = file if current is None else _temp_name(file)  # atomic_write names its own
        try:
            self._write(file, tmp, data, current)
        except FileNotFoundError:  # the first blob under this prefix: make its folder
            with contextlib.suppress(FileExistsError):
                os.mkdir(os.path.dirname(file))
            self._write(file, tmp, data, current)
        if current is None:
            self._recent.add(digest, data)
        return digest

    @staticmethod
    def _write(file: str, tmp: str, data: bytes, current: _Batch | None) -> None:
        if current is None:
            atomic_write(file, data)
            return
        with open(tmp, "wb") as f:
            f.write(data)
        current.temps[file] = tmp

    def get(self, digest: bytes) -> dict[str, np.ndarray]:
        """The payload named `digest`: from memory if this store wrote it lately and nobody read
        it since, else read from disk and verified (parsed, and its content hash compared)."""
        recent = self._recent.take(digest)
        if recent is not None:
            return from_safetensors(recent)
        data = self.get_bytes(digest)
        try:
            tensors = from_safetensors(data)
        except PayloadValidationError as exc:
            raise BlobError(f"blob {digest.hex()[:16]} is corrupt ({exc})") from None
        if tensors_digest(tensors) != digest:
            raise BlobError(f"blob {digest.hex()[:16]} is corrupt (content hash differs)")
        return tensors

    def get_bytes(self, digest: bytes) -> bytes:
        """The stored safetensors bytes of `digest`, unverified."""
        slot = self._packed.get(digest)
        if slot is None:
            try:
                with open(self._file(digest), "rb") as f:
                    return f.read()
            except FileNotFoundError:
                self._refresh()
                if (slot := self._packed.get(digest)) is None:
                    raise BlobError(f"no blob {digest.hex()[:16]} in {self.directory}") from None
        return _read_slot(digest, slot)

    def digests(self) -> list[bytes]:
        self._refresh()
        with self._lock:
            packed = set(self._packed)
        single = {
            bytes.fromhex(p.name[: -len(SUFFIX)]) for p in self.directory.glob("*/*" + SUFFIX)
        }
        return sorted(packed | single)


def _read_slot(digest: bytes, slot: _Slot) -> bytes:
    try:
        fd = os.open(slot.pack, os.O_RDONLY)
    except FileNotFoundError:
        raise BlobError(f"blob {digest.hex()[:16]}: its pack {slot.pack} is gone") from None
    try:
        data = os.pread(fd, slot.length, slot.offset)
    finally:
        os.close(fd)
    if len(data) != slot.length:
        raise BlobError(f"blob {digest.hex()[:16]} is corrupt (its pack is truncated)")
    return data
