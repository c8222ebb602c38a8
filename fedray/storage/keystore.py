"""A directory of named Ed25519 keys, each an encrypted PKCS#8 PEM file with mode 0600.

The passphrase comes from the caller: a run in `runtime.keys=fresh` mode takes the operator's from
`FEDRAY_KEY_PASSPHRASE` (`fedray.federation.keys`); simulations and tests use the public development
passphrase `DEV_PASSPHRASE`, which is fine for simulation and wrong for anything of value (the run
writes a notice saying so beside such keys).
"""

from __future__ import annotations

import re
from pathlib import Path

from fedray.core.crypto import PrivateKey, generate_key, load_key, save_key
from fedray.errors import KeyFileError

DEV_PASSPHRASE = "fedray-insecure-dev-passphrase"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class KeyStore:
    def __init__(self, directory: str | Path, passphrase: str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.passphrase = passphrase

    def path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise KeyFileError(f"invalid key name {name!r}")
        return self.directory / f"{name}.pem"

    def save(self, name: str, key: PrivateKey) -> Path:
        return save_key(self.path(name), key, self.passphrase)

    def create(self, name: str) -> PrivateKey:
        if self.path(name).exists():
            raise KeyFileError(f"key {name!r} already exists in {self.directory}")
        key = generate_key()
        self.save(name, key)
        return key

    def load(self, name: str) -> PrivateKey:
        return load_key(self.path(name), self.passphrase)

    def load_or_create(self, name: str) -> PrivateKey:
        return self.load(name) if self.path(name).exists() else self.create(name)

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.pem"))
