"""One process per node directory: an exclusive `flock` on `<dir>/LOCK`, held while a ledger app
has the directory open and released by the kernel when its process dies, kill -9 included.

A resumed run opens the same directories its killed predecessor used; if an actor of that run still
lives, two writers on one block store and one signer state could sign twice. `DirLock` waits a
little for such a process to go (it is being torn down), then refuses with `StorageError`. Readers
(`fedray chain verify`) ask `held_by_another` to know whether a live node writes beside them.

Ignores: network file systems without flock semantics.
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path
from typing import IO

from fedray.errors import StorageError

LOCK_NAME = "LOCK"


class DirLock:
    """Hold `<directory>/LOCK` exclusively until `release()` (see the module docstring)."""

    def __init__(self, directory: str | Path, wait_s: float = 0.0) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._file: IO[bytes] | None = open(self.path, "ab")  # noqa: SIM115 (held until release)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._file.close()
                    self._file = None
                    raise StorageError(
                        f"{self.path.parent} is in use by another process (a validator of a run "
                        "that is still running or still shutting down)"
                    ) from None
                time.sleep(0.2)

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def held_by_another(directory: str | Path) -> bool:
    """Whether a live process (this one included) holds `<directory>/LOCK`; never creates or
    changes the file."""
    path = Path(directory) / LOCK_NAME
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False
