"""Ed25519 keys and domain-separated signatures.

Every signature covers `encode([domain, chain_id]) || message`: the domain tag (one per message type,
below) keeps a vote from ever verifying as a transaction, and the chain id keeps a testnet signature
from replaying on another chain. PyNaCl (libsodium) signs and verifies: it measured about 2x the
verify rate of `cryptography` here (experiments/bench_core.py). `cryptography` writes and reads the
keys as encrypted PKCS#8 PEM, mode 0600.

Deliberately ignored: key rotation, hardware signers, batch verification.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedray.core.encoding import encode
from fedray.errors import KeyFileError, SignatureError

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64

DOMAIN_TX = "fedray/tx/v1"
DOMAIN_VOTE = "fedray/vote/v1"
DOMAIN_PROPOSAL = "fedray/proposal/v1"
DOMAIN_PAYLOAD = "fedray/payload/v1"  # a client's statement of the payload it delivered


def signing_bytes(domain: str, chain_id: str, message: bytes) -> bytes:
    """The exact bytes a signature covers."""
    return encode([domain, chain_id]) + message


@dataclass(frozen=True)
class PrivateKey:
    """An Ed25519 signing key (32-byte seed). Its repr never shows the seed."""

    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise KeyFileError(f"an Ed25519 seed has 32 bytes, got {len(self.seed)}")
        # Expand once: libsodium's secret key is seed || public key.
        public, secret = nacl.bindings.crypto_sign_seed_keypair(bytes(self.seed))
        object.__setattr__(self, "_public", bytes(public))
        object.__setattr__(self, "_secret", bytes(secret))

    @property
    def public_key(self) -> bytes:
        return self._public  # type: ignore[no-any-return,attr-defined]

    def sign(self, domain: str, chain_id: str, message: bytes) -> bytes:
        signed = nacl.bindings.crypto_sign(
            signing_bytes(domain, chain_id, message),
            self._secret,  # type: ignore[attr-defined]
        )
        return bytes(signed[:SIGNATURE_SIZE])


def generate_key() -> PrivateKey:
    """A fresh key from the OS CSPRNG (key generation is the one place randomness is wanted)."""
    return PrivateKey(os.urandom(32))


def key_from_seed(seed: bytes) -> PrivateKey:
    """A deterministic key for tests and simulations: the seed is hashed to 32 bytes."""
    import hashlib

    return PrivateKey(hashlib.sha256(b"fedray/test-key/" + seed).digest())


def verify(public_key: bytes, domain: str, chain_id: str, message: bytes, signature: bytes) -> None:
    """Raise `SignatureError` unless `signature` is `public_key`'s over (domain, chain_id, message)."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise SignatureError(f"public key has {len(public_key)} bytes, expected {PUBLIC_KEY_SIZE}")
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureError(f"signature has {len(signature)} bytes, expected {SIGNATURE_SIZE}")
    try:
        nacl.bindings.crypto_sign_open(
            bytes(signature) + signing_bytes(domain, chain_id, message), bytes(public_key)
        )
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        raise SignatureError(
            f"signature does not verify for key {public_key.hex()[:16]}… in domain {domain!r} "
            f"on chain {chain_id!r}"
        ) from None


def is_valid_signature(
    public_key: bytes, domain: str, chain_id: str, message: bytes, signature: bytes
) -> bool:
    try:
        verify(public_key, domain, chain_id, message, signature)
    except SignatureError:
        return False
    return True


def save_key(path: str | Path, key: PrivateKey, passphrase: str) -> Path:
    """Write `key` as encrypted PKCS#8 PEM, mode 0600, atomically (temp file + rename)."""
    if not passphrase:
        raise KeyFileError("refusing to save a key without a passphrase")
    path = Path(path)
    pem = Ed25519PrivateKey.from_private_bytes(key.seed).private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.BestAvailableEncryption(passphrase.encode()),
    )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def load_key(path: str | Path, passphrase: str) -> PrivateKey:
    """Read a key written by `save_key`; a wrong passphrase, a non-Ed25519 key or a file readable by
    group or others is a `KeyFileError`."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"key file {path} is accessible by group or others (chmod 600 it)")
    try:
        loaded = serialization.load_pem_private_key(data, password=passphrase.encode())
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            f"cannot decrypt key file {path}: wrong passphrase or corrupt ({exc})"
        ) from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyFileError(f"key file {path} holds a {type(loaded).__name__}, not Ed25519")
    seed = loaded.private_bytes(
        encoding=serialization.Encoding.Raw,
        format=serialization.PrivateFormat.Raw,
        encryption_algorithm=serialization.NoEncryption(),
    )
    return PrivateKey(seed)
