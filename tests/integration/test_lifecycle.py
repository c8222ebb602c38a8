"""`fedray run` as a user runs it, in its own process and with its own Ray: when Ray fails to start
or an actor fails to build, the command exits 2 with one line, no process it started outlives it,
and no run directory stays; killed with SIGKILL at any moment, `fedray run --resume` ends with the
same global model hashes, round by round, as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "fedray" / "conf" / "preset" / "minimal.yaml"

pytestmark = pytest.mark.slow  # each test starts Ray in a fresh process, twice or more


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    """The environment of a `fedray run` subprocess: this checkout, and a Ray temp dir of its own
    (short: Ray's socket paths must fit 107 bytes)."""
    tmp = tempfile.mkdtemp(prefix="frt", dir="/tmp")
    yield {**os.environ, "PYTHONPATH": str(ROOT), "RAY_TMPDIR": tmp, "RAY_ADDRESS": ""}


def fedray(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """`fedray ...` in a new session (its Ray processes included), so they can be found."""
    return subprocess.Popen(
        [sys.executable, "-m", "fedray.cli", *args],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def session_processes(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`, read from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if fields[0] != "Z" and int(fields[3]) == sid:
            out.append(int(entry.name))
    return out


def reap(sid: int) -> None:
    """End what a SIGKILLed run of ours left (Ray agents exit on their own, but slowly)."""
    for pid in session_processes(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def hashes(run_dir: Path) -> list[str]:
    return [r["global_model_hash"] for r in pq.read_table(run_dir / "metrics.parquet").to_pylist()]


@pytest.mark.parametrize(
    "overrides",
    [
        ["faults.fail_pool_start=true"],  # an actor fails to build
        ["runtime.object_store_mb=100000000"],  # Ray refuses to start
    ],
)
def test_a_failed_start_leaves_no_process_and_no_run_directory(
    env: dict[str, str], tmp_path: Path, overrides: list[str]
) -> None:
    out = tmp_path / "runs"
    proc = fedray(["run", str(MINIMAL), f"output_dir={out}", *overrides], env)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and ("failed to build" in last or "Ray failed" in last)
    assert not out.exists()  # neither the run directory nor the folder made for it
    left = {
        pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()[:120]
        for pid in session_processes(proc.pid)
    }
    assert left == {}  # nothing it started lives on


def test_a_run_killed_at_any_moment_resumes_to_the_same_hashes(
    env: dict[str, str], tmp_path: Path
) -> None:
    # A slowed pool widens each round (it changes no hash) so kills land inside rounds; replay is
    # a stateful attack (its pool's state must survive); the resume comes after the open round's
    # 15 s deadline has passed in block time, so its first block would close the round at once.
    args = [
        str(MINIMAL),
        "rounds=5",
        "faults.slow_pool_s=2",
        "attack=replay",
        "attack.fraction=0.34",
        "chain.round_timeout_s=15",
    ]
    reference = fedray(["run", *args, f"output_dir={tmp_path / 'ref'}"], env)
    assert reference.wait(timeout=900) == 0
    expected = hashes(next((tmp_path / "ref").iterdir()))
    assert len(expected) == 5

    def before_any_round(run_dir: Path) -> bool:  # blocks committed, nothing recorded
        return (run_dir / "chain" / "validator-0" / "chain.sqlite").exists()

    def inside_round_3(run_dir: Path) -> bool:  # two rounds recorded, the third training
        return (run_dir / "checkpoints" / "round-00001.safetensors").exists()

    for i, moment in enumerate((before_any_round, inside_round_3)):
        out = tmp_path / f"killed-{i}"
        proc = fedray(["run", *args, f"output_dir={out}"], env)
        deadline = time.monotonic() + 600
        while not (out.exists() and any(moment(d) for d in out.iterdir())):
            assert proc.poll() is None and time.monotonic() < deadline, "never got there"
            time.sleep(0.2)
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(20)  # past the open round's deadline
        reap(proc.pid)
        run_dir = next(out.iterdir())
        resumed = fedray(["run", "--resume", str(run_dir)], env)
        stdout, stderr = resumed.communicate(timeout=900)
        assert resumed.returncode == 0, stderr[-2000:]
        assert hashes(run_dir) == expected, f"killed {moment.__name__}"
        assert "global model    " + expected[-1] in stdout
        reap(resumed.pid)
