"""The documented `ray job submit` path (docs/deploy.md): a token-protected Ray head with its
dashboard (loopback only), and `ray job submit --runtime-env-json '{"working_dir": ...}' -- python
-m fedray.cli run ...` from the repository. The job's driver joins the cluster through the
RAY_ADDRESS that Ray gives it, with the token from the head's environment, and runs the code and
configs of the working_dir: a preset that exists only in that copy runs, on the driver and on every
actor. The head runs in processes of its own (`ray start --block`), stopped by its own pid.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, head: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert head.poll() is None, "ray start failed"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"nothing listens on {port}")


@pytest.mark.slow
def test_ray_job_submit_runs_the_working_dirs_code_on_a_token_protected_cluster() -> None:
    root = Path(tempfile.mkdtemp(prefix="fr-"))  # Ray's socket paths must stay short
    work = root / "work"  # the working_dir: this repository's code, plus a preset of its own
    shutil.copytree(REPO / "fedray", work / "fedray", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "fedray" / "conf" / "preset" / "job_only.yaml").write_text(
        "name: from-working-dir\nrounds: 1\nclients: 6\nbaseline: false\n"
        "chain: {round_deadline_blocks: 20, round_timeout_s: 120.0}\n"
        "runtime: {client_pools: 1, progress: false}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "PYTHONPATH"}
    env.update(
        HOME=str(root),
        RAY_TMPDIR=str(root),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # loopback addresses
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
    )
    dashboard = free_port()
    ports = {
        "--port": free_port(),
        "--ray-client-server-port": free_port(),
        "--dashboard-port": dashboard,
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--metrics-export-port": free_port(),
        "--runtime-env-agent-port": free_port(),
    }
    head = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", "--num-cpus=2", "--disable-usage-stats"]
        + ["--object-store-memory=100000000", "--include-dashboard=true"]
        + ["--dashboard-host=127.0.0.1", *(f"{k}={v}" for k, v in ports.items())],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(dashboard, head)
        runtime_env = {"working_dir": str(work)}
        submit = subprocess.run(
            [str(RAY), "job", "submit", "--address", f"http://127.0.0.1:{dashboard}"]
            + ["--runtime-env-json", json.dumps(runtime_env), "--"]
            + [
                "python",
                "-m",
                "fedray.cli",
                "run",
                "preset=job_only",
                f"output_dir={root / 'runs'}",
            ],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert submit.returncode == 0, submit.stdout[-4000:] + submit.stderr[-2000:]
        (run_dir,) = (root / "runs").iterdir()
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["name"] == "from-working-dir" and summary["finished"]
        assert summary["rounds"] == 1 and summary["final_accuracy"] > summary["initial_accuracy"]

        # The same dashboard refuses a request without the token.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{dashboard}/api/jobs/", timeout=30)
        assert refused.value.code in (401, 403)
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops its processes on SIGTERM
        head.wait(timeout=120)
        shutil.rmtree(root, ignore_errors=True)
