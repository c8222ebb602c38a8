"""Ed25519 keys and domain-separated signatures; encrypted key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fedray.core.crypto import (
    DOMAIN_TX,
    DOMAIN_VOTE,
    generate_key,
    is_valid_signature,
    key_from_seed,
    load_key,
    save_key,
    verify,
)
from fedray.errors import KeyFileError, SignatureError


def test_sign_verify_and_domain_separation() -> None:
    key = key_from_seed(b"k")
    sig = key.sign(DOMAIN_TX, "chain-a", b"message")
    verify(key.public_key, DOMAIN_TX, "chain-a", b"message", sig)
    assert not is_valid_signature(key.public_key, DOMAIN_VOTE, "chain-a", b"message", sig)
    assert not is_valid_signature(key.public_key, DOMAIN_TX, "chain-b", b"message", sig)
    assert not is_valid_signature(key.public_key, DOMAIN_TX, "chain-a", b"messagE", sig)
    other = key_from_seed(b"other")
    with pytest.raises(SignatureError):
        verify(other.public_key, DOMAIN_TX, "chain-a", b"message", sig)
    with pytest.raises(SignatureError):
        verify(key.public_key, DOMAIN_TX, "chain-a", b"message", sig[:-1])


def test_deterministic_keys_and_signatures() -> None:
    assert key_from_seed(b"x").public_key == key_from_seed(b"x").public_key
    assert key_from_seed(b"x").sign(DOMAIN_TX, "c", b"m") == key_from_seed(b"x").sign(
        DOMAIN_TX, "c", b"m"
    )
    assert generate_key().public_key != generate_key().public_key
    key = key_from_seed(b"x")
    assert key.seed.hex() not in repr(key) and repr(key.seed) not in repr(key)


def test_key_file_round_trip_mode_and_wrong_passphrase(tmp_path: Path) -> None:
    key = generate_key()
    path = save_key(tmp_path / "v.pem", key, "correct horse")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert load_key(path, "correct horse").public_key == key.public_key
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_key(path, "battery staple")
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="group or others"):
        load_key(path, "correct horse")
    with pytest.raises(KeyFileError, match="cannot read"):
        load_key(tmp_path / "missing.pem", "x")
    with pytest.raises(KeyFileError):
        save_key(tmp_path / "y.pem", key, "")
