"""The chain tools read a kept run directory without changing a byte of it, check every store even
when one is damaged, and name the validator and height; one process per node directory."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fedray.cli import main as cli_main
from fedray.errors import StorageError
from fedray.storage.blockstore import DB_NAME
from fedray.storage.dirlock import DirLock, held_by_another
from fedray.storage.trees import tree_from_bytes, tree_to_bytes

# Appends 12 blocks and exits without closing: the blocks stay in the WAL, not yet merged.
WRITER = r"""
import os, sys
import fedray.core
from fedray.core.contracts.accounts import Transfer
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.tx import make_tx
from fedray.storage.blockstore import BlockStore
genesis, vkeys, akeys = dev_genesis("fedray-ro", n_accounts=2)
store = BlockStore(sys.argv[1], snapshot_interval=0)
store.init_genesis(genesis)
chain = DevChain(genesis, vkeys)
for i in range(12):
    block = chain.advance([make_tx(akeys[0], genesis.chain_id, i, Transfer(akeys[1].public_key, 1)).raw])
    store.append(block, chain.certificates[-1], chain.state)
os._exit(0)
"""


def files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run-like directory with three validators' stores, their blocks still in the WAL."""
    root = tmp_path / "run"
    first = root / "chain" / "validator-0"
    subprocess.run([sys.executable, "-c", WRITER, str(first)], check=True)
    assert (first / (DB_NAME + "-wal")).exists()
    for i in (1, 2):
        shutil.copytree(first, root / "chain" / f"validator-{i}")
    return root


def test_verify_show_and_export_change_nothing(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files(run_dir)
    assert cli_main(["chain", "verify", str(run_dir)]) == 0
    assert cli_main(["chain", "show", str(run_dir / "chain" / "validator-0"), "--height", "3"]) == 0
    assert (
        cli_main(
            [
                "chain",
                "export",
                str(run_dir / "chain" / "validator-1"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 0
    )
    assert files(run_dir) == before  # the WAL is neither merged nor deleted; nothing is created
    out = capsys.readouterr().out
    assert "OK validator-0: 12 blocks" in out and "OK: 3 block stores agree up to height 12" in out


def test_a_damaged_store_is_named_and_the_others_are_still_checked(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = run_dir / "chain" / "validator-1"
    (bad / DB_NAME).write_bytes(b"not a database" * 100)
    (bad / (DB_NAME + "-wal")).unlink()
    assert cli_main(["chain", "verify", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert "FAIL validator-1: cannot read" in out
    assert "OK validator-0: 12 blocks" in out and "OK validator-2: 12 blocks" in out
    assert "OK: 2 block stores agree up to height 12" in out


def test_a_store_that_breaks_midway_names_validator_and_height(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    db = sqlite3.connect(run_dir / "chain" / "validator-2" / DB_NAME)
    db.execute("UPDATE blocks SET state_root = ? WHERE height = 7", (b"\x00" * 32,))
    db.commit()
    db.close()
    assert cli_main(["chain", "verify", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert "FAIL validator-2: height 7: stored_mismatch" in out
    assert "OK validator-0" in out and "OK validator-1" in out


def test_one_process_per_node_directory(tmp_path: Path) -> None:
    assert held_by_another(tmp_path) is False  # no LOCK file yet
    lock = DirLock(tmp_path)
    code = (
        "import sys; from fedray.storage.dirlock import held_by_another as h; print(h(sys.argv[1]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert out.stdout.strip() == "True"
    with pytest.raises(StorageError, match="in use by another process"):
        DirLock(tmp_path, wait_s=0.3)
    lock.release()
    DirLock(tmp_path).release()  # free again


def test_state_trees_round_trip_without_pickle() -> None:
    tree = {
        "recorded": {3: {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, 7: {"w": np.ones(2)}},
        "n": 4,
        "label": "x",
        "items": [1.5, None, True],
    }
    back = tree_from_bytes(tree_to_bytes(tree))
    assert set(back["recorded"]) == {3, 7} and back["n"] == 4 and back["items"] == [1.5, None, True]
    assert np.array_equal(back["recorded"][3]["w"], tree["recorded"][3]["w"])
    assert back["recorded"][3]["w"].dtype == np.float32
    with pytest.raises(StorageError):
        tree_from_bytes(b"\x00" * 40)
    with pytest.raises(StorageError):
        tree_to_bytes({"f": object()})
