"""Blob store (content-addressed safetensors, verified reads), payload validation order, key store."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from fedray.core.crypto import generate_key
from fedray.errors import (
    BlobError,
    KeyFileError,
    PayloadDtypeError,
    PayloadHashError,
    PayloadNonFiniteError,
    PayloadShapeError,
    PayloadSizeError,
    PayloadValidationError,
)
from fedray.storage.blobs import BlobStore
from fedray.storage.keystore import KeyStore
from fedray.storage.tensors import (
    TensorSpec,
    from_safetensors,
    tensors_digest,
    to_safetensors,
    validate_payload,
)

TENSORS = {"w": np.arange(12, dtype=np.int32).reshape(3, 4), "b": np.array([-1, 2], np.int32)}


def test_digest_is_container_independent() -> None:
    d = tensors_digest(TENSORS)
    assert tensors_digest(dict(reversed(list(TENSORS.items())))) == d
    assert tensors_digest(from_safetensors(to_safetensors(TENSORS))) == d
    assert tensors_digest({"w": TENSORS["w"].T.copy().T, "b": TENSORS["b"]}) == d
    big_endian = {"w": TENSORS["w"].astype(">i4"), "b": TENSORS["b"]}
    assert tensors_digest(big_endian) == d
    assert tensors_digest({**TENSORS, "b": np.array([-1, 3], np.int32)}) != d
    assert tensors_digest({"w": TENSORS["w"].reshape(4, 3), "b": TENSORS["b"]}) != d


def test_blob_store_round_trip_and_corruption(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, recent_bytes=0)  # reads what it wrote from disk
    digest = store.put(TENSORS)
    assert store.has(digest) and store.put(TENSORS) == digest
    got = store.get(digest)
    assert set(got) == {"w", "b"} and np.array_equal(got["w"], TENSORS["w"])
    assert store.digests() == [digest]
    assert not list(tmp_path.rglob("*.tmp"))
    path = store.path(digest)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(BlobError, match="corrupt"):
        store.get(digest)
    with pytest.raises(BlobError, match="no blob"):
        store.get(b"\x00" * 32)


def test_validation_order() -> None:
    spec = TensorSpec.of(TENSORS)
    good_hash = tensors_digest(TENSORS)
    assert validate_payload(TENSORS, good_hash, spec, 1 << 20, int_bound=100)["w"].shape == (3, 4)
    # Size is checked first: even a wrong hash reports size.
    with pytest.raises(PayloadSizeError):
        validate_payload(TENSORS, b"\x00" * 32, spec, 8)
    with pytest.raises(PayloadHashError):
        validate_payload(TENSORS, b"\x00" * 32, spec, 1 << 20)
    wrong_dtype = {**TENSORS, "b": TENSORS["b"].astype(np.float32)}
    with pytest.raises(PayloadDtypeError):
        validate_payload(wrong_dtype, tensors_digest(wrong_dtype), spec, 1 << 20)
    wrong_shape = {**TENSORS, "w": TENSORS["w"].reshape(4, 3)}
    with pytest.raises(PayloadShapeError):
        validate_payload(wrong_shape, tensors_digest(wrong_shape), spec, 1 << 20)
    missing = {"w": TENSORS["w"]}
    with pytest.raises(PayloadShapeError):
        validate_payload(missing, tensors_digest(missing), spec, 1 << 20)
    nan = {"x": np.array([1.0, np.nan], np.float32)}
    with pytest.raises(PayloadNonFiniteError):
        validate_payload(nan, tensors_digest(nan), TensorSpec.of(nan), 1 << 20)
    with pytest.raises(PayloadNonFiniteError):
        validate_payload(TENSORS, good_hash, spec, 1 << 20, int_bound=5)
    with pytest.raises(PayloadDtypeError):
        validate_payload({"w": [1, 2]}, good_hash, spec, 1 << 20)  # type: ignore[dict-item]
    with pytest.raises(PayloadValidationError):
        from_safetensors(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(PayloadSizeError):
        from_safetensors(to_safetensors(TENSORS), max_bytes=10)


def test_key_store(tmp_path: Path) -> None:
    ks = KeyStore(tmp_path / "keys", "pass phrase")
    key = ks.create("validator-0")
    assert stat.S_IMODE(ks.path("validator-0").stat().st_mode) == 0o600
    assert ks.load("validator-0").public_key == key.public_key
    assert ks.load_or_create("validator-0").public_key == key.public_key
    assert ks.names() == ["validator-0"]
    with pytest.raises(KeyFileError, match="already exists"):
        ks.create("validator-0")
    with pytest.raises(KeyFileError, match="invalid key name"):
        ks.path("../escape")
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        KeyStore(tmp_path / "keys", "other").load("validator-0")
    ks.save("imported", generate_key())
    assert ks.names() == ["imported", "validator-0"]
