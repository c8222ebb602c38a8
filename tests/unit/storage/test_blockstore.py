"""Block store durability (SIGKILL at random points), snapshots, and `fedray chain verify` catching
any single-byte change to a stored block."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fedray.core  # noqa: F401
from fedray.cli import main as cli_main
from fedray.core.contracts.accounts import Transfer
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.tx import make_tx
from fedray.errors import StorageError
from fedray.node.replay import load_state, verify_chain
from fedray.storage.blockstore import BlockStore

GENESIS, VKEYS, AKEYS = dev_genesis("fedray-store", n_accounts=4)


def build_chain(directory: Path, heights: int, snapshot_interval: int = 4) -> DevChain:
    chain = DevChain(GENESIS, VKEYS)
    nonces = [0] * len(AKEYS)
    with BlockStore(directory, snapshot_interval=snapshot_interval) as store:
        store.init_genesis(GENESIS)
        for h in range(heights):
            txs = []
            for i, key in enumerate(AKEYS):
                to = AKEYS[(i + 1) % len(AKEYS)].public_key
                txs.append(make_tx(key, GENESIS.chain_id, nonces[i], Transfer(to, h + 1)).raw)
                nonces[i] += 1
            block = chain.advance(txs)
            store.append(block, chain.certificates[-1], chain.state)
    return chain


@pytest.fixture(scope="module")
def stored_chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DevChain]:
    directory = tmp_path_factory.mktemp("chain")
    return directory, build_chain(directory, 10)


def test_append_reopen_snapshots_and_load(stored_chain: tuple[Path, DevChain]) -> None:
    directory, chain = stored_chain
    with BlockStore(directory, snapshot_interval=4) as store:
        assert store.height() == 10
        assert store.snapshot_heights() == [4, 8]
        assert [s.hash for s in store.iter_blocks()] == [b.hash for b in chain.blocks]
        assert load_state(store).to_bytes() == chain.state.to_bytes()
        report = verify_chain(store)
        assert report.ok and report.height == 10 and report.state_root == chain.state.root()
        with pytest.raises(StorageError, match="cannot append"):
            store.append(chain.blocks[3], chain.certificates[3], chain.states[4])
        with pytest.raises(StorageError, match="another chain"):
            store.init_genesis(dev_genesis("other")[0])


def test_corrupt_snapshot_is_not_trusted(tmp_path: Path) -> None:
    chain = build_chain(tmp_path, 5, snapshot_interval=4)
    with sqlite3.connect(tmp_path / "chain.sqlite") as db:
        wrong = chain.states[2].to_bytes()  # a valid state, but not the one at height 4
        db.execute("UPDATE snapshots SET state=? WHERE height=4", (wrong,))
    with BlockStore(tmp_path) as store:
        assert load_state(store).root() == chain.state.root()


def _copy_db(src: Path, dst: Path) -> None:
    dst.mkdir()
    with sqlite3.connect(src / "chain.sqlite") as a, sqlite3.connect(dst / "chain.sqlite") as b:
        a.backup(b)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_byte_change_is_caught(
    stored_chain: tuple[Path, DevChain],
    tmp_path_factory: pytest.TempPathFactory,
    data: st.DataObject,
) -> None:
    directory, chain = stored_chain
    copy = tmp_path_factory.mktemp("tampered")
    os.rmdir(copy)
    _copy_db(directory, copy)
    height = data.draw(st.integers(1, 10), label="height")
    column = data.draw(st.sampled_from(["block", "certificate", "state_root"]), label="column")
    with sqlite3.connect(copy / "chain.sqlite") as db:
        (value,) = db.execute(f"SELECT {column} FROM blocks WHERE height=?", (height,)).fetchone()
        value = bytearray(value)
        pos = data.draw(st.integers(0, len(value) - 1), label="byte")
        value[pos] ^= data.draw(st.integers(1, 255), label="xor")
        db.execute(f"UPDATE blocks SET {column}=? WHERE height=?", (bytes(value), height))
    with BlockStore(copy) as store:
        report = verify_chain(store)
    assert not report.ok
    assert report.height == height, report
    # The CLI reports the same failure with exit status 1.
    assert cli_main(["chain", "verify", str(copy)]) == 1


def test_cli_verify_show_export(
    stored_chain: tuple[Path, DevChain], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.parquet as pq

    directory, chain = stored_chain
    assert cli_main(["chain", "verify", str(directory)]) == 0
    assert "OK" in capsys.readouterr().out
    assert cli_main(["chain", "show", str(directory), "--height", "3"]) == 0
    out = capsys.readouterr().out
    assert chain.blocks[2].hash.hex() in out and out.count("transfer") == 4
    assert cli_main(["chain", "export", str(directory), "--out", str(tmp_path / "x")]) == 0
    blocks = pq.read_table(tmp_path / "x" / "blocks.parquet").to_pydict()
    txs = pq.read_table(tmp_path / "x" / "transactions.parquet").to_pydict()
    assert blocks["height"] == list(range(1, 11))
    assert len(txs["hash"]) == 40 and set(txs["kind"]) == {"transfer"}
    assert cli_main(["chain", "verify", str(tmp_path / "nothing")]) == 2


CHILD = r"""
import sys
import fedray.core
from fedray.core.contracts.accounts import Transfer
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.tx import make_tx
from fedray.node.replay import load_state
from fedray.storage.blockstore import BlockStore
from fedray.core.state import Params
# no fees: the sender's balance lasts for any number of blocks however long the child runs
genesis, vkeys, akeys = dev_genesis("fedray-store", n_accounts=4, params=Params(gas_price=0))
store = BlockStore(sys.argv[1], snapshot_interval=3)
store.init_genesis(genesis)
chain = DevChain(genesis, vkeys)
if store.height():  # resume after the previous crash
    chain.state = load_state(store)
    chain.certificates.append(store.get(store.height()).cert())
sys.stdout.write(f"ready {store.height()}\n")
sys.stdout.flush()
sender = akeys[0]
while True:
    nonce = chain.state.account(sender.public_key).nonce
    txs = [make_tx(sender, genesis.chain_id, nonce + i, Transfer(akeys[1].public_key, 1)).raw
           for i in range(20)]
    block = chain.advance(txs)
    store.append(block, chain.certificates[-1], chain.state)
    sys.stdout.write(f"{block.height} {block.hash.hex()}\n")
    sys.stdout.flush()
"""
ACK_TIMEOUT_S = 300.0  # generous: on a loaded machine the child's imports alone take seconds
ACKS_BEFORE_KILL = 2  # committed heights the child acknowledges before the kill can come


def _run_and_kill(directory: Path, rng: random.Random) -> list[str]:
    """Start the appending child, wait until it acknowledged ACKS_BEFORE_KILL committed heights,
    SIGKILL it at a random moment within 0.15 s (often in the middle of an append) and return
    every line it wrote."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    acked = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if sum(1 for x in lines if not x.startswith("ready")) >= ACKS_BEFORE_KILL:
                acked.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while not acked.wait(0.05) and reader.is_alive() and time.monotonic() < deadline:
            pass
        if not acked.is_set():  # the child died or hangs
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"the child acknowledged no {ACKS_BEFORE_KILL} heights: {lines} {err}")
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join()
        proc.communicate()
    return lines


def crash_many_times(directory: Path, kills: int, seed: int) -> int:
    """SIGKILL a child that appends blocks (resuming from the store each time) at random instants
    after it acknowledged some; after each kill the store must hold every acknowledged block and
    verify. Returns the tip."""
    rng = random.Random(seed)
    acked: dict[int, str] = {}
    for _ in range(kills):
        lines = _run_and_kill(directory, rng)
        (ready,) = [int(x.split()[1]) for x in lines if x.startswith("ready")]
        assert ready == max(acked, default=0)  # resumed from the tip the last run left
        run_acked = {
            int(h): hx for h, hx in (x.split() for x in lines if not x.startswith("ready"))
        }
        assert len(run_acked) >= ACKS_BEFORE_KILL
        acked.update(run_acked)
        with BlockStore(directory) as store:
            tip = store.height()
            # Every acknowledged append is durable; at most the one in-flight block is extra.
            assert max(acked) <= tip <= max(acked) + 1
            for h, hx in acked.items():
                assert store.get(h).hash.hex() == hx
            report = verify_chain(store)
            assert report.ok and report.height == tip, report
            if tip not in acked:
                acked[tip] = store.get(tip).hash.hex()  # committed but killed before acknowledging
    return max(acked)


def test_sigkill_at_random_points_leaves_a_committed_prefix(tmp_path: Path) -> None:
    assert crash_many_times(tmp_path / "crash", kills=8, seed=7) >= 8 * ACKS_BEFORE_KILL


@pytest.mark.slow
def test_sigkill_many_more_times(tmp_path: Path) -> None:
    assert crash_many_times(tmp_path / "crash", kills=60, seed=11) >= 60 * ACKS_BEFORE_KILL
