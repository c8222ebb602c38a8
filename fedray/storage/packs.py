"""Pack files: the blobs of one `BlobStore.batch` in a single file, so an ingress creates one file
per batch instead of one per update (creating a file is ext4 inode allocation, about half of an
ingress's CPU when each update had its own).

A pack is its blobs' bytes back to back, then an index (per blob: its 32-byte digest, offset and
length, little-endian) and a fixed trailer (a magic, the number of entries and the SHA-256 of the
index). A `PackWriter` fills a hidden temp file in `<store>/packs/`; the store syncs it, renames it
to `<name>.pack` and syncs the folder, so a pack is only ever seen whole. `read_index` trusts a
pack only when its trailer, its index's hash and every entry's range check out: a truncated or
damaged pack is ignored (its blobs are absent), never read as other bytes.

Stores open in other processes (the validator beside its ingress, `fedray export`) learn of new
packs from `packs/names.log`, to which each committed pack's name is appended (`announce`): a
store that misses a digest reads the log's new tail (`read_names`) rather than listing the folder.
The log is a hint, never synced: a store lists the folder when it opens.

Owns: the file format, writing one pack, reading and checking a pack's index, the log of names.
Ignores: which blobs go into a pack and syncing or renaming it (`blobs.py`), checking a blob's
content (the store's digest check on every read), garbage collection.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import struct

from fedray.errors import BlobError

log = logging.getLogger(__name__)

SUFFIX = ".pack"
LOG_NAME = "names.log"
MAGIC = b"FRPACK1\x00"
DIGEST_BYTES = 32
ENTRY = struct.Struct("<32sQQ")  # digest, offset, length
TRAILER = struct.Struct("<8sQ32s")  # magic, entries, sha256 of the index

Index = dict[bytes, tuple[int, int]]  # digest -> (offset, length)


def is_pack_name(name: str) -> bool:
    """A committed pack's file name (temp files start with a dot; no name leaves the folder)."""
    return name.endswith(SUFFIX) and not name.startswith(".") and "/" not in name


class PackWriter:
    """One pack being written: blobs appended to its temp file as they are put."""

    def __init__(self, folder: str) -> None:
        self.name = secrets.token_hex(16) + SUFFIX  # unique across processes, no coordination
        self.path = os.path.join(folder, self.name)
        self.temp = os.path.join(folder, f".{self.name}.tmp")
        self.entries: Index = {}
        self._file = open(self.temp, "xb")  # noqa: SIM115 (closed by seal or discard)
        self._offset = 0

    def add(self, digest: bytes, data: bytes) -> None:
        if len(digest) != DIGEST_BYTES:
            raise BlobError(f"a packed blob's digest has {DIGEST_BYTES} bytes, not {len(digest)}")
        self._file.write(data)
        self.entries[digest] = (self._offset, len(data))
        self._offset += len(data)

    def seal(self) -> None:
        """Append the index and the trailer and close the file (the caller syncs it)."""
        index = b"".join(ENTRY.pack(d, o, n) for d, (o, n) in self.entries.items())
        self._file.write(index + TRAILER.pack(MAGIC, len(self.entries), sha256(index)))
        self._file.close()

    def discard(self) -> None:
        """Remove the pack, under its temp name or its own (renamed, then a later step failed:
        its name is random, so it is no other writer's)."""
        self._file.close()
        for path in (self.temp, self.path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def read_index(path: str) -> Index | None:
    """The index of the pack at `path`, or None when the pack is not whole and consistent
    (truncated, damaged trailer or index, an entry outside the blobs' region). Raises
    `FileNotFoundError` when there is no such file."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < TRAILER.size:
            return _untrusted(path, "shorter than its trailer")
        f.seek(size - TRAILER.size)
        magic, count, index_hash = TRAILER.unpack(f.read(TRAILER.size))
        index_bytes = count * ENTRY.size
        if magic != MAGIC or index_bytes > size - TRAILER.size:
            return _untrusted(path, "no valid trailer")
        blobs_end = size - TRAILER.size - index_bytes
        f.seek(blobs_end)
        index = f.read(index_bytes)
    if len(index) != index_bytes or sha256(index) != index_hash:
        return _untrusted(path, "index does not match its hash")
    out: Index = {}
    for digest, offset, length in ENTRY.iter_unpack(index):
        if offset + length > blobs_end:
            return _untrusted(path, "an entry lies outside the blobs")
        out[digest] = (offset, length)
    return out


def _untrusted(path: str, why: str) -> Index | None:
    log.warning("blob pack %s ignored: %s", path, why)
    return None


def announce(folder: str, name: str) -> None:
    """Append `name` to the folder's log of packs. Each record starts and ends with a newline, so
    a record torn by a failed write cannot merge with the next one."""
    record = f"\n{name}\n".encode()
    fd = os.open(os.path.join(folder, LOG_NAME), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.write(fd, record) != len(record):
            raise OSError(f"short write to the pack log of {folder}")
    finally:
        os.close(fd)


def log_size(folder: str) -> int:
    """The log's size in bytes (0 when no pack was announced yet)."""
    try:
        return os.stat(os.path.join(folder, LOG_NAME)).st_size
    except FileNotFoundError:
        return 0


def read_names(folder: str, start: int) -> tuple[list[str], int]:
    """The pack names announced from byte `start` of the log, and where the next read starts (the
    end of the last whole record: a record being appended is read next time)."""
    try:
        with open(os.path.join(folder, LOG_NAME), "rb") as f:
            f.seek(start)
            tail = f.read()
    except FileNotFoundError:
        return [], start
    whole = tail.rfind(b"\n") + 1
    names = [n.decode("ascii", "replace") for n in tail[:whole].split(b"\n") if n]
    return [n for n in names if is_pack_name(n)], start + whole
