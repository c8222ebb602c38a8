"""Packed blobs (`storage/packs.py` through `BlobStore`): both layouts read by any store, a store
opened before a pack was written finds it, a damaged pack is never trusted, a damaged blob is an
error, and reads stay right while batches commit."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from fedray.errors import BlobError
from fedray.storage import packs
from fedray.storage.blobs import BlobStore, atomic_write
from fedray.storage.tensors import tensors_digest, to_safetensors


def payload(i: int, n: int = 12) -> dict[str, np.ndarray]:
    return {"w": np.arange(i, i + n, dtype=np.int32), "b": np.array([i], np.int32)}


def pinned(store: BlobStore, first: int, count: int) -> list[bytes]:
    with store.batch():
        return [store.put(payload(i)) for i in range(first, first + count)]


def legacy_write(root: Path, i: int) -> bytes:
    """A blob as stores wrote it before packs: its own file, no packs folder."""
    digest = tensors_digest(payload(i))
    (root / digest.hex()[:2]).mkdir(parents=True, exist_ok=True)
    atomic_write(
        root / digest.hex()[:2] / f"{digest.hex()}.safetensors", to_safetensors(payload(i))
    )
    return digest


def the_pack(store: BlobStore) -> Path:
    (pack,) = (store.directory / "packs").glob("*.pack")
    return pack


def test_both_layouts_are_read_by_a_store_opened_later(tmp_path: Path) -> None:
    writer = BlobStore(tmp_path)
    packed = pinned(writer, 0, 3)
    single = writer.put(payload(10))
    legacy = legacy_write(tmp_path, 20)
    for store in (writer, BlobStore(tmp_path, read_only=True), BlobStore(tmp_path)):
        assert store.digests() == sorted([*packed, single, legacy])
        for i, d in zip([0, 1, 2, 10, 20], [*packed, single, legacy], strict=True):
            assert store.has(d)
            assert store.get_bytes(d) == to_safetensors(payload(i))
            assert np.array_equal(store.get(d)["w"], payload(i)["w"])


def test_a_directory_without_packs_opens_read_only(tmp_path: Path) -> None:
    digest = legacy_write(tmp_path, 1)
    store = BlobStore(tmp_path, read_only=True)
    assert store.digests() == [digest] and store.get(digest)["b"][0] == 1
    assert not (tmp_path / "packs").exists()  # a read-only store creates nothing


def test_a_reader_finds_packs_written_after_it_opened(tmp_path: Path) -> None:
    reader = BlobStore(tmp_path, read_only=True)  # before the writer made the packs folder
    writer = BlobStore(tmp_path)
    first = pinned(writer, 0, 3)
    assert all(reader.has(d) for d in first)
    second = pinned(writer, 3, 3)
    assert reader.get(second[2])["b"][0] == 5  # a miss in `get` looks too
    assert reader.digests() == sorted(first + second)
    later = BlobStore(tmp_path, read_only=True)  # opened after some packs, before others
    third = pinned(writer, 6, 2)
    assert later.has(third[0]) and reader.has(third[1])


def test_a_truncated_pack_is_not_trusted(tmp_path: Path) -> None:
    writer = BlobStore(tmp_path, recent_bytes=0)  # reads what it wrote from disk
    digests = pinned(writer, 0, 4)
    pack = the_pack(writer)
    size = pack.stat().st_size
    for cut in (1, packs.TRAILER.size, size // 2, size):
        os.truncate(pack, size - cut)
        store = BlobStore(tmp_path)
        assert not any(store.has(d) for d in digests), cut
        assert store.digests() == []
        with pytest.raises(BlobError, match="no blob"):
            store.get(digests[0])
    # the writer had indexed it whole: reading now fails, it never returns other bytes
    with pytest.raises(BlobError, match="truncated"):
        writer.get_bytes(digests[-1])
    with pytest.raises(BlobError, match="truncated"):
        writer.get(digests[-1])
    again = BlobStore(tmp_path)
    assert pinned(again, 0, 1) == digests[:1] and BlobStore(tmp_path).get(digests[0])["b"][0] == 0


def test_a_damaged_index_is_not_trusted(tmp_path: Path) -> None:
    digests = pinned(BlobStore(tmp_path), 0, 3)
    pack = the_pack(BlobStore(tmp_path))
    raw = bytearray(pack.read_bytes())
    index_start = len(raw) - packs.TRAILER.size - 3 * packs.ENTRY.size
    raw[index_start + packs.DIGEST_BYTES] ^= 0x01  # the first entry's offset
    pack.write_bytes(bytes(raw))
    assert not any(BlobStore(tmp_path, read_only=True).has(d) for d in digests)


def test_an_entry_outside_the_blobs_is_not_trusted(tmp_path: Path) -> None:
    """A pack whose index hash is right but whose entry runs into the index (a writer's bug), or
    whose magic is another format's, is not trusted."""
    blob = to_safetensors(payload(0))
    index = packs.ENTRY.pack(tensors_digest(payload(0)), 0, len(blob) + 8)
    trailer = packs.TRAILER.pack(packs.MAGIC, 1, packs.sha256(index))
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "crafted.pack").write_bytes(blob + index + trailer)
    assert packs.read_index(str(tmp_path / "packs" / "crafted.pack")) is None
    assert BlobStore(tmp_path, read_only=True).digests() == []
    good = packs.ENTRY.pack(tensors_digest(payload(0)), 0, len(blob))
    trailer = packs.TRAILER.pack(b"FRPACK9\x00", 1, packs.sha256(good))  # a format not known
    (tmp_path / "packs" / "crafted.pack").write_bytes(blob + good + trailer)
    assert packs.read_index(str(tmp_path / "packs" / "crafted.pack")) is None
    trailer = packs.TRAILER.pack(packs.MAGIC, 1, packs.sha256(good))
    (tmp_path / "packs" / "crafted.pack").write_bytes(blob + good + trailer)
    assert BlobStore(tmp_path, read_only=True).get(tensors_digest(payload(0)))["b"][0] == 0


def test_a_corrupt_byte_in_a_packed_blob_is_an_error(tmp_path: Path) -> None:
    writer = BlobStore(tmp_path, recent_bytes=0)  # reads what it wrote from disk
    digests = pinned(writer, 0, 3)
    pack = the_pack(writer)
    blob_bytes = len(to_safetensors(payload(0)))
    for at, error in ((2 * blob_bytes - 1, "content hash"), (blob_bytes + 3, "corrupt")):
        raw = bytearray(pack.read_bytes())
        raw[at] ^= 0xFF  # the second blob's last tensor byte, then its header
        pack.write_bytes(bytes(raw))
        for store in (writer, BlobStore(tmp_path, read_only=True)):
            with pytest.raises(BlobError, match=error):
                store.get(digests[1])
            assert store.get(digests[0])["b"][0] == 0 and store.get(digests[2])["b"][0] == 2
        raw[at] ^= 0xFF
        pack.write_bytes(bytes(raw))


def test_a_torn_record_in_the_log_hides_no_pack(tmp_path: Path) -> None:
    reader = BlobStore(tmp_path, read_only=True)
    writer = BlobStore(tmp_path)
    with open(tmp_path / "packs" / packs.LOG_NAME, "ab") as log:
        log.write(b"\n0123abcd.pa")  # a write cut short by a crash or a full disk
    digests = pinned(writer, 0, 2)
    assert all(reader.has(d) for d in digests)
    names, end = packs.read_names(str(tmp_path / "packs"), 0)
    assert (
        names == [the_pack(writer).name]
        and end == (tmp_path / "packs" / packs.LOG_NAME).stat().st_size
    )


def test_reads_stay_right_while_batches_commit(tmp_path: Path) -> None:
    """Readers in other threads, on the writer's store and on another store (as another process
    opens it), while the writer commits batches: a blob whose batch returned is found with its
    bytes by both, and no read fails or returns other bytes."""
    writer = BlobStore(tmp_path)
    other = BlobStore(tmp_path, read_only=True)
    committed: list[tuple[int, bytes]] = []
    done = threading.Event()
    failures: list[BaseException] = []

    def read(store: BlobStore) -> None:
        try:
            while True:
                finished = done.is_set()  # one more pass after the last batch
                for i, d in committed[-8:]:
                    assert store.has(d), i
                    assert store.get(d)["b"][0] == i
                assert not store.has(tensors_digest(payload(10_000)))
                if finished:
                    break
        except BaseException as exc:
            failures.append(exc)

    readers = [threading.Thread(target=read, args=(s,)) for s in (writer, other, other)]
    for t in readers:
        t.start()
    try:
        for first in range(0, 200, 10):
            digests = pinned(writer, first, 10)
            committed.extend(zip(range(first, first + 10), digests, strict=True))
    finally:
        done.set()
    for t in readers:
        t.join()
    assert failures == []
    assert other.digests() == sorted(d for _, d in committed) == writer.digests()


def test_a_thread_that_finds_the_log_read_finds_its_packs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one thread indexes a newly announced pack, another that misses one of its blobs
    waits for it rather than answering from the half-built index."""
    writer = BlobStore(tmp_path)
    reader = BlobStore(tmp_path, read_only=True)
    digest = pinned(writer, 0, 1)[0]
    entered, release = threading.Event(), threading.Event()
    real = packs.read_index

    def slow(path: str) -> packs.Index | None:
        entered.set()
        release.wait()
        return real(path)

    monkeypatch.setattr(packs, "read_index", slow)
    answers: dict[str, bool] = {}
    first = threading.Thread(target=lambda: answers.update(first=reader.has(digest)))
    first.start()
    entered.wait()
    second = threading.Thread(target=lambda: answers.update(second=reader.has(digest)))
    second.start()
    second.join(0.5)  # with the mark advanced too early it answers now, and wrongly
    release.set()
    first.join()
    second.join()
    assert answers == {"first": True, "second": True}
