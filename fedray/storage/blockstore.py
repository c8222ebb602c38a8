"""The block store: committed blocks, their commit certificates and resulting state roots in SQLite,
plus periodic full-state snapshots so a node restarts without replaying from genesis.

Durability: WAL journal, `synchronous=FULL`, one SQLite transaction per committed block (block,
certificate, state root and, every `snapshot_interval` heights, the snapshot). After a crash at any
instant the store reopens with exactly the blocks whose `append` returned, never a partial one: SQLite's
atomic commit is the whole mechanism, so there is nothing here to recover by hand.

Reading without writing (`reading`): the tools that inspect a kept run directory (verify, show,
export) must leave it byte for byte as it was, so they never open its store read-write (closing the
last read-write connection merges the WAL into the database and deletes `-wal` and `-shm`). Beside
a live node (its directory lock is held) they read through a `mode=ro` connection, as any SQLite
reader does; otherwise they copy the database and its WAL to a temporary directory and read the
copy, so not even the WAL index is touched.

Deliberately ignored: pruning, and indexing transactions by hash (export does that).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fedray.core.block import Block, CommitCertificate
from fedray.core.encoding import decode, encode
from fedray.core.state import Genesis, State
from fedray.errors import StorageError
from fedray.storage.dirlock import held_by_another

DB_NAME = "chain.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    block BLOB NOT NULL,
    certificate BLOB NOT NULL,
    state_root BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (height INTEGER PRIMARY KEY, state BLOB NOT NULL);
"""


@dataclass(frozen=True)
class StoredBlock:
    height: int
    hash: bytes
    raw: bytes
    certificate: bytes
    state_root: bytes  # root after executing this block

    def block(self) -> Block:
        return Block.from_bytes(self.raw)

    def cert(self) -> CommitCertificate:
        return CommitCertificate.from_bytes(self.certificate)


class BlockStore:
    """A node's committed chain in `<directory>/chain.sqlite`. Thread-safe (one lock)."""

    def __init__(
        self, directory: str | Path, snapshot_interval: int = 100, read_only: bool = False
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self.snapshot_interval = snapshot_interval
        self.read_only = read_only
        self._lock = threading.Lock()
        try:
            if read_only:
                uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
                self._db = sqlite3.connect(
                    uri, uri=True, check_same_thread=False, isolation_level=None
                )
                self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot open block store {self.path}: {exc}") from None

    @staticmethod
    def exists(directory: str | Path) -> bool:
        return (Path(directory) / DB_NAME).exists()

    @staticmethod
    @contextlib.contextmanager
    def reading(directory: str | Path) -> Iterator[BlockStore]:
        """The store in `directory`, opened so that nothing in `directory` changes (see the
        module docstring)."""
        source = Path(directory)
        if not (source / DB_NAME).exists():
            raise StorageError(f"no block store ({DB_NAME}) in {source}")
        if held_by_another(source):
            with BlockStore(source, read_only=True) as store:
                yield store
            return
        with tempfile.TemporaryDirectory(prefix="fedray-read-") as tmp:
            for name in (DB_NAME, DB_NAME + "-wal"):
                if (source / name).exists():
                    shutil.copyfile(source / name, Path(tmp) / name)
            try:
                store = BlockStore(tmp, read_only=True)
            except StorageError as exc:
                raise StorageError(f"cannot open block store {source / DB_NAME}: {exc}") from None
            with store:
                yield store

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> BlockStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- genesis ------------------------------------------------------------------------------
    def init_genesis(self, genesis: Genesis) -> None:
        """Record the genesis once; reopening with a different genesis is an error."""
        raw = encode(genesis.to_canonical())
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='genesis'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('genesis', ?)", (raw,))
            elif bytes(row[0]) != raw:
                raise StorageError(f"{self.path} holds another chain's genesis")

    def genesis(self) -> Genesis:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='genesis'").fetchone()
        if row is None:
            raise StorageError(f"{self.path} has no genesis")
        return Genesis.from_canonical(decode(bytes(row[0])))

    # --- meta -----------------------------------------------------------------------------------
    def set_meta(self, key: str, value: bytes) -> None:
        """Keep a small named value beside the chain (the runtime stores its proposer schedule)."""
        if key == "genesis":
            raise StorageError("the genesis is written only by init_genesis")
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    # --- blocks -------------------------------------------------------------------------------
    def height(self) -> int:
        """The last committed height (0 when only genesis)."""
        with self._lock:
            row = self._db.execute("SELECT MAX(height) FROM blocks").fetchone()
        return int(row[0] or 0)

    def append(self, block: Block, certificate: CommitCertificate, state: State) -> None:
        """Commit `block` with its certificate and the state after it, atomically."""
        if state.height != block.height or state.last_block_hash != block.hash:
            raise StorageError("state does not belong to the block being stored")
        snapshot = (
            state.to_bytes()
            if self.snapshot_interval and block.height % self.snapshot_interval == 0
            else None
        )
        with self._lock:
            tip = self._db.execute("SELECT MAX(height), hash FROM blocks").fetchone()
            tip_height = int(tip[0] or 0)
            if block.height != tip_height + 1:
                raise StorageError(f"cannot append height {block.height} after {tip_height}")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO blocks VALUES (?, ?, ?, ?, ?)",
                    (block.height, block.hash, block.raw, certificate.to_bytes(), state.root()),
                )
                if snapshot is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO snapshots VALUES (?, ?)", (block.height, snapshot)
                    )
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._db.execute("ROLLBACK")
                raise StorageError(f"cannot store block {block.height}: {exc}") from None

    def get(self, height: int) -> StoredBlock:
        with self._lock:
            row = self._db.execute(
                "SELECT height, hash, block, certificate, state_root FROM blocks WHERE height=?",
                (height,),
            ).fetchone()
        if row is None:
            raise StorageError(f"no block at height {height}")
        return StoredBlock(row[0], bytes(row[1]), bytes(row[2]), bytes(row[3]), bytes(row[4]))

    def iter_blocks(self, start: int = 1, end: int | None = None) -> Iterator[StoredBlock]:
        """Blocks in height order from `start` to `end` inclusive (the tip if None)."""
        stop = self.height() if end is None else end
        batch = 256
        for lo in range(start, stop + 1, batch):
            hi = min(stop, lo + batch - 1)
            with self._lock:
                rows = self._db.execute(
                    "SELECT height, hash, block, certificate, state_root FROM blocks "
                    "WHERE height BETWEEN ? AND ? ORDER BY height",
                    (lo, hi),
                ).fetchall()
            for row in rows:
                yield StoredBlock(
                    row[0], bytes(row[1]), bytes(row[2]), bytes(row[3]), bytes(row[4])
                )

    # --- snapshots ----------------------------------------------------------------------------
    def save_snapshot(self, state: State) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?)", (state.height, state.to_bytes())
            )

    def latest_snapshot(self, at_most: int | None = None) -> State | None:
        limit = self.height() if at_most is None else at_most
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM snapshots WHERE height <= ? ORDER BY height DESC LIMIT 1",
                (limit,),
            ).fetchone()
        return None if row is None else State.from_bytes(bytes(row[0]))

    def snapshot_heights(self) -> list[int]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT height FROM snapshots ORDER BY height")]
