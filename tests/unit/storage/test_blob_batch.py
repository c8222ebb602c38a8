"""`BlobStore.batch`: a batch's blobs appear under their names, synced, only when it ends; an
error inside it leaves none of them (and no temp file) behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fedray.storage import blobs as blobs_module
from fedray.storage.blobs import BlobStore
from fedray.storage.tensors import tensors_digest


def payload(i: int) -> dict[str, np.ndarray]:
    return {"w": np.full((4, 3), i, dtype=np.int32)}


def files(store: BlobStore) -> list[str]:
    return sorted(p.name for p in store.directory.rglob("*") if p.is_file())


def test_a_batch_names_its_blobs_when_it_ends(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.batch():
        digests = [store.put(payload(i)) for i in range(5)]
        assert all(store.has(d) for d in digests)  # seen by the batch's own thread
        assert not any(store.path(d).exists() for d in digests)  # not under its name yet
        assert store.put(payload(0)) == digests[0]  # idempotent within the batch
    assert [store.get(d)["w"][0, 0] for d in digests] == list(range(5))
    assert not [n for n in files(store) if n.endswith(".tmp")]


def test_a_batch_syncs_every_file_before_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path)
    synced: list[str] = []
    real = blobs_module.fsync_path

    def spy(path: str | Path) -> None:
        if Path(path).is_file():  # the directories are synced after the renames
            assert not store.path(tensors_digest(payload(0))).exists()  # still a temp file
            synced.append(Path(path).name)
        real(path)

    monkeypatch.setattr(blobs_module, "fsync_path", spy)
    with store.batch():
        for i in range(3):
            store.put(payload(i))
    assert len(synced) == 3 and all(n.endswith(".tmp") for n in synced)


def test_an_error_in_a_batch_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(KeyError), store.batch():
        digest = store.put(payload(1))
        raise KeyError("fails mid-batch")
    assert not store.has(digest)
    assert files(store) == []


def test_a_failed_sync_names_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(tmp_path)

    def broken(path: Path) -> None:
        raise OSError(os.strerror(28))  # no space left on the device

    monkeypatch.setattr(blobs_module, "fsync_path", broken)
    with pytest.raises(OSError), store.batch():
        digest = store.put(payload(2))
    assert not store.has(digest) and files(store) == []


def test_a_put_after_a_batch_is_durable_at_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.batch():
        store.put(payload(4))
    digest = store.put(payload(3))
    assert store.path(digest).exists()
