"""The durable signer state of a validator: one small file, replaced atomically.

`FileSignerStore(path, codec).save(state)` must be durable before the vote or proposal it covers leaves the
node (signer safety, `fedray.consensus.signer`), and a crash at any point must leave either the old
or the new state, never a torn or missing one: write a temporary file in the same directory, fsync
it, `os.replace` it over the target, then fsync the directory so the rename itself survives a power
loss. `load()` returns the empty state when the file does not exist (a fresh validator) and raises
`StorageError` when it exists but is corrupt: a validator must not silently forget what it signed.

The file is JSON for operators (the codec's summary, e.g. height, round and step, readable at a
glance) wrapping the state's bytes (hex) and their SHA-256 digest, which `load` checks.

Storage imports only the core (the import rings), so the state type and its bytes come from the
caller's `codec`; `fedray.consensus.driver.file_signer_store(path)` binds the consensus signer state.

Deliberately ignored: locking against two processes using one file (one validator process per node
directory is the runtime's rule) and remote signers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from fedray.core.encoding import digest
from fedray.errors import FedrayError, StorageError

FORMAT = "fedray/signer-state/v1"

S = TypeVar("S")


class SignerCodec(Protocol[S]):
    """How to turn a signer state into bytes and back, and what a fresh validator starts with."""

    def empty(self) -> S: ...

    def to_bytes(self, state: S) -> bytes: ...

    def from_bytes(self, raw: bytes) -> S: ...

    def summary(self, state: S) -> dict[str, Any]: ...


class FileSignerStore(Generic[S]):
    """A signer store (see `fedray.consensus.driver.SignerStore`) backed by one file."""

    def __init__(self, path: str | Path, codec: SignerCodec[S]) -> None:
        self.path = Path(path)
        self.codec = codec
        self._cached: S | None = None

    def load(self) -> S:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self.codec.empty()
        except OSError as exc:
            raise StorageError(f"cannot read signer state {self.path}: {exc.strerror}") from None
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise StorageError(f"unknown format {doc.get('format')!r}")
            raw = bytes.fromhex(doc["state"])
            if digest(raw).hex() != doc["sha256"]:
                raise StorageError("digest mismatch")
            state = self.codec.from_bytes(raw)
        except (ValueError, KeyError, TypeError, AttributeError, FedrayError) as exc:
            raise StorageError(f"signer state {self.path} is corrupt: {exc}") from None
        self._cached = state
        return state

    def save(self, state: S) -> None:
        if self._cached is not None and state == self._cached:
            return  # nothing new to make durable
        raw = self.codec.to_bytes(state)
        doc = {
            "format": FORMAT,
            **self.codec.summary(state),
            "state": raw.hex(),
            "sha256": digest(raw).hex(),
        }
        data = json.dumps(doc, indent=1).encode()
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{self.path.name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._cached = state
