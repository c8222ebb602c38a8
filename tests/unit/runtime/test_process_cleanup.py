"""What an embedded Ray leaves when it stops is waited for, then killed: `wait_or_kill` over the
processes `init_ray` started and their descendants (found from /proc)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fedray.runtime.processes import _alive, _descendants, wait_or_kill

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

TREE = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"


def test_a_process_tree_is_found_waited_for_and_killed() -> None:
    root = subprocess.Popen([sys.executable, "-c", TREE])
    try:
        deadline = time.monotonic() + 20
        while not _descendants({root.pid}):  # the grandchild starts
            assert time.monotonic() < deadline
            time.sleep(0.05)
        tree = {root.pid} | _descendants({root.pid})
        assert len(tree) == 2
        start = time.monotonic()
        assert wait_or_kill(tree, grace_s=0.5) == sorted(tree)  # neither exits on its own
        assert time.monotonic() - start < 5
        root.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in tree):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        root.kill()
    assert wait_or_kill(tree, grace_s=0.5) == []  # gone: nothing to wait for or kill
