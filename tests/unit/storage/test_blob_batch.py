"""`BlobStore.batch`: a batch's blobs go into one pack, synced before it is named; they are
readable (by any store) only when the batch ends; an error inside it leaves none of them (and no
temp file) behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fedray.storage import blobs as blobs_module
from fedray.storage import packs as packs_module
from fedray.storage.blobs import BlobStore
from fedray.storage.tensors import tensors_digest


def payload(i: int) -> dict[str, np.ndarray]:
    return {"w": np.full((4, 3), i, dtype=np.int32)}


def files(store: BlobStore) -> list[str]:
    return sorted(p.name for p in store.directory.rglob("*") if p.is_file())


def pack_files(store: BlobStore) -> list[Path]:
    return sorted((store.directory / "packs").glob("*.pack"))


def test_a_batch_packs_its_blobs_when_it_ends(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.batch():
        digests = [store.put(payload(i)) for i in range(5)]
        assert all(store.has(d) for d in digests)  # seen by the batch's own thread
        assert not any(BlobStore(tmp_path, read_only=True).has(d) for d in digests)
        assert pack_files(store) == []  # not under its name yet
        assert store.put(payload(0)) == digests[0]  # idempotent within the batch
    assert [store.get(d)["w"][0, 0] for d in digests] == list(range(5))
    assert len(pack_files(store)) == 1  # one file for the whole batch
    assert not any(store.path(d).exists() for d in digests)
    assert not [n for n in files(store) if n.endswith(".tmp")]


def test_a_batch_syncs_its_pack_before_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path)
    synced: list[str] = []
    real = blobs_module.fsync_path

    def spy(path: str | Path) -> None:
        if Path(path).is_file():
            assert pack_files(store) == []  # still a temp file
        else:  # the folder: after the rename
            assert len(pack_files(store)) == 1
        synced.append(Path(path).name)
        real(path)

    monkeypatch.setattr(blobs_module, "fsync_path", spy)
    with store.batch():
        for i in range(3):
            store.put(payload(i))
    assert len(synced) == 2 and synced[0].endswith(".pack.tmp") and synced[1] == "packs"


def test_an_error_in_a_batch_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(KeyError), store.batch():
        digest = store.put(payload(1))
        raise KeyError("fails mid-batch")
    assert not store.has(digest)
    assert not BlobStore(tmp_path, read_only=True).has(digest)
    assert files(store) == []


def test_a_failed_sync_names_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(tmp_path)

    def broken(path: Path) -> None:
        raise OSError(os.strerror(28))  # no space left on the device

    monkeypatch.setattr(blobs_module, "fsync_path", broken)
    with pytest.raises(OSError), store.batch():
        digest = store.put(payload(2))
    assert not store.has(digest) and files(store) == []


def test_a_failed_announcement_takes_the_pack_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other processes' stores would never learn of an unannounced pack: it is not kept."""
    store = BlobStore(tmp_path)

    def broken(folder: str, name: str) -> None:
        raise OSError(os.strerror(28))

    monkeypatch.setattr(packs_module, "announce", broken)
    with pytest.raises(OSError), store.batch():
        digest = store.put(payload(2))
    assert not store.has(digest) and files(store) == []


def test_a_put_after_a_batch_is_durable_at_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.batch():
        store.put(payload(4))
    digest = store.put(payload(3))
    assert store.path(digest).exists()


def test_a_large_blob_keeps_its_own_file_in_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blobs_module, "PACK_MAX_BLOB", 100)
    store = BlobStore(tmp_path)
    small = {"w": np.arange(3, dtype=np.int32)}
    large = {"w": np.arange(100, dtype=np.int32)}
    with store.batch():
        d_small, d_large = store.put(small), store.put(large)
        assert store.has(d_large) and not store.path(d_large).exists()
    assert store.path(d_large).exists() and not store.path(d_small).exists()
    reader = BlobStore(tmp_path, read_only=True)
    assert np.array_equal(reader.get(d_large)["w"], large["w"])
    assert np.array_equal(reader.get(d_small)["w"], small["w"])
    assert not [n for n in files(store) if n.endswith(".tmp")]


def test_nested_batches_make_one_pack(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.batch():
        store.put(payload(0))
        with store.batch():
            store.put(payload(1))
        assert pack_files(store) == []
    assert len(pack_files(store)) == 1
    assert store.digests() == sorted(tensors_digest(payload(i)) for i in range(2))


def test_a_failed_folder_sync_takes_the_named_pack_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pack was renamed but its name is not durable: the batch fails and no store, opened
    then or later, finds its blobs."""
    store = BlobStore(tmp_path)
    real = blobs_module.fsync_path

    def broken_folder(path: str | Path) -> None:
        if Path(path).is_dir():
            raise OSError(os.strerror(5))
        real(path)

    monkeypatch.setattr(blobs_module, "fsync_path", broken_folder)
    with pytest.raises(OSError), store.batch():
        digest = store.put(payload(5))
    assert not store.has(digest) and not BlobStore(tmp_path).has(digest)
    assert files(store) == []
