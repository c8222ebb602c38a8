"""Four validator actors on the session's local Ray cluster; every test starts its own network in
its own directories, so each passes alone and in any order: commits with transfers; one validator
crashed (`ray.kill`) does not stop commits, and restarted (a new process) from its directory it
catches up to the same blocks and state roots; two of four crashed stop commits, restarted they
resume with no fork; after the crashes every validator holds byte-identical blocks at every height,
and `fedray chain verify` accepts every validator directory."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from fedray.cli import main as fedray_main
from fedray.core.contracts.accounts import Transfer
from fedray.core.devchain import dev_genesis
from fedray.core.tx import make_tx
from fedray.runtime.localnet import SHARED_CPU_SETTINGS, ValidatorNet

CHAIN = "fedray-it"
SETTINGS = SHARED_CPU_SETTINGS


class Scenario:
    def __init__(self, root: Path) -> None:
        genesis, vkeys, self.akeys = dev_genesis(CHAIN, n_validators=4, n_accounts=2)
        self.balance = genesis.state().account(self.akeys[1].public_key).balance  # type: ignore[union-attr]
        self.root = root
        self.net = ValidatorNet(root, genesis, vkeys, **SETTINGS)

    def tip(self) -> int:
        return max(self.net.heights())

    def stored_roots(self, i: int, hi: int) -> list[bytes]:
        """State roots validator `i` stored for heights 1..hi (read-only, beside the live actor)."""
        uri = f"file:{self.net.dirs[i] / 'chain.sqlite'}?mode=ro"
        with sqlite3.connect(uri, uri=True) as db:
            rows = db.execute(
                "SELECT state_root FROM blocks WHERE height <= ? ORDER BY height", (hi,)
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def assert_identical(self) -> int:
        """Byte-identical blocks and identical stored state roots on all live validators, up to
        the lowest tip; returns that height."""
        tips = self.net.heights()
        common = min(tips)
        ranges = [[] for _ in tips]
        for lo in range(1, common + 1, 64):
            for i, r in enumerate(self.net.call("committed_range", lo, min(common, lo + 63))):
                ranges[i].extend(r)
        assert all(len(r) == common for r in ranges)
        for h in range(common):
            blocks = {r[h][0] for r in ranges}
            assert len(blocks) == 1, f"validators hold different blocks at height {h + 1}"
        hashes = self.net.call("block_hashes", 1, common)
        assert all(m == hashes[0] for m in hashes) and len(hashes[0]) == common
        roots = [self.stored_roots(i, common) for i in self.net.live]
        assert all(r == roots[0] for r in roots) and len(roots[0]) == common
        return common

    def stored_height(self, i: int) -> int:
        """The last height validator `i` stored (read-only, beside the live or dead actor)."""
        uri = f"file:{self.net.dirs[i] / 'chain.sqlite'}?mode=ro"
        with sqlite3.connect(uri, uri=True) as db:
            (height,) = db.execute("SELECT COALESCE(MAX(height), 0) FROM blocks").fetchone()
        return int(height)

    def pid(self, i: int) -> int:
        """The process id of validator `i`'s actor."""
        return int(ray.get(self.net.handles[i].status.remote()).pid)

    def verify_directories(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Stop the network (closing the stores), then replay each directory from genesis."""
        self.net.stop()
        capsys.readouterr()
        assert fedray_main(["chain", "verify", str(self.root)]) == 0
        out = capsys.readouterr().out
        assert out.count("OK ") == 4 and "FAIL" not in out
        assert "4 block stores agree up to height" in out


@pytest.fixture
def scenario(ray_cluster: None, tmp_path: Path) -> Iterator[Scenario]:
    """A fresh, started network of four validators in this test's own directory."""
    s = Scenario(tmp_path / "validators")
    s.net.start()
    yield s
    s.net.stop()


def test_four_validators_commit_transfers(scenario: Scenario) -> None:
    net, akeys = scenario.net, scenario.akeys
    txs = [make_tx(akeys[0], CHAIN, n, Transfer(akeys[1].public_key, 5)).raw for n in range(4)]
    assert net.call("submit_txs", txs, indices=[0]) == [[]]
    answers = net.wait_for_height(4, timeout_s=30)
    assert all(a.height >= 4 and a.failed is None for a in answers)
    deadline = time.monotonic() + 30
    while net.call("account_nonces", [akeys[0].public_key]) != [{akeys[0].public_key: 4}] * 4:
        assert time.monotonic() < deadline, "transfers were not all committed"
        time.sleep(0.2)
    assert scenario.assert_identical() >= 4


def test_crashed_validator_does_not_stop_commits_and_restarted_catches_up(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    net = scenario.net
    net.wait_for_height(2, timeout_s=30)
    pid_before = scenario.pid(3)
    net.kill(3)  # returns once Ray reports the actor dead
    left_at = scenario.stored_height(3)
    answers = net.wait_for_height(left_at + 3, timeout_s=30)  # the live three move on without it
    assert net.live == [0, 1, 2] and all(a.height >= left_at + 3 for a in answers)
    net.start([3])
    assert scenario.pid(3) != pid_before, "validator 3 was not restarted in a new process"
    target = scenario.tip() + 3
    answers = net.wait_for_height(target, timeout_s=60)
    assert all(a.height >= target and a.failed is None for a in answers)
    assert scenario.stored_height(3) >= target  # it committed again after the restart
    assert scenario.assert_identical() >= target
    scenario.verify_directories(capsys)


def test_two_crashed_validators_stop_commits_and_resume_without_fork(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    net = scenario.net
    net.wait_for_height(2, timeout_s=30)
    pids_before = [scenario.pid(2), scenario.pid(3)]
    net.kill(2)
    net.kill(3)
    time.sleep(1.0)  # a block already precommitted by the crashed pair may still land
    stalled_at = scenario.tip()
    time.sleep(3.0)
    assert scenario.tip() == stalled_at, "two of four validators cannot commit"
    net.start([2, 3])
    assert set(pids_before).isdisjoint({scenario.pid(2), scenario.pid(3)}), "not restarted"
    target = stalled_at + 4
    answers = net.wait_for_height(target, timeout_s=60)
    assert all(a.height >= target and a.failed is None for a in answers)
    assert scenario.assert_identical() >= target
    scenario.verify_directories(capsys)
