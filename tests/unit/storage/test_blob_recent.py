"""A blob store serves the blobs it wrote lately from memory, once each (bounded by bytes, oldest
out first), without reading or re-hashing them: those bytes never went through the disk. Only
blobs made durable count (a failed batch's do not), a read-only store has none, and whatever left
the memory (read once, or pushed out) is read from disk and verified again."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fedray.errors import BlobError
from fedray.storage.blobs import BlobStore


def payload(i: int) -> dict[str, np.ndarray]:
    return {"w": np.full(1000, i, dtype=np.int32)}  # 4,000 bytes of data


def blob_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name != "names.log"]


def corrupt_every_file(root: Path) -> None:
    """Every byte of every blob file and pack flipped: no blob on disk is readable any more."""
    for path in blob_files(root):
        path.write_bytes(bytes(b ^ 0xFF for b in path.read_bytes()))


def test_what_a_store_wrote_lately_is_served_from_memory(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.batch():
        packed = [store.put(payload(i)) for i in range(3)]
    alone = store.put(payload(9))
    corrupt_every_file(tmp_path)
    assert [int(store.get(d)["w"][0]) for d in [*packed, alone]] == [0, 1, 2, 9]
    fresh = BlobStore(tmp_path)  # another process: reads the disk, and the check catches it
    for digest in [*packed, alone]:
        with pytest.raises(BlobError):
            fresh.get(digest)
        with pytest.raises(BlobError):  # read once already: the disk again
            store.get(digest)


def test_the_memory_is_bounded_and_the_oldest_leave_first(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, recent_bytes=20_000)  # room for four of these blobs
    digests = [store.put(payload(i)) for i in range(6)]
    corrupt_every_file(tmp_path)
    for digest in digests[:2]:  # pushed out: read from disk, checked
        with pytest.raises(BlobError):
            store.get(digest)
    assert [int(store.get(d)["w"][0]) for d in digests[2:]] == [2, 3, 4, 5]
    big = BlobStore(tmp_path / "big", recent_bytes=20_000)
    large = big.put({"w": np.zeros(2000, np.int32)})  # over a quarter of the room: not kept
    os.truncate(blob_files(tmp_path / "big")[0], 100)
    with pytest.raises(BlobError):
        big.get(large)


def test_a_failed_batch_leaves_nothing_in_memory_either(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(RuntimeError), store.batch():
        digest = store.put(payload(1))
        raise RuntimeError("the batch fails")
    assert not store.has(digest)
    with pytest.raises(BlobError, match="no blob"):
        store.get(digest)


def test_a_read_only_store_reads_the_disk(tmp_path: Path) -> None:
    digest = BlobStore(tmp_path).put(payload(4))
    reader = BlobStore(tmp_path, read_only=True)
    assert int(reader.get(digest)["w"][0]) == 4
    corrupt_every_file(tmp_path)
    with pytest.raises(BlobError):
        reader.get(digest)
