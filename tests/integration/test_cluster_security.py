"""fedray's Ray boundary, attacked for real. A process without the token cannot run code on the
embedded cluster that `init_ray` (the code path of `fedray run`) started; every socket of that
cluster listens on loopback although the host has an external interface; the embedded instance is
fedray's own whatever cluster the machine records; cluster mode refuses a cluster without token
authentication unless allowed, and joins a token-protected one with its token."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray

from fedray.runtime.cluster import accepts_anonymous, is_loopback

REPO = Path(__file__).resolve().parents[2]

# Joins `sys.argv[1]` and runs a function there; prints the GCS address it reached.
ATTACK = """
import sys, ray
ray.init(address=sys.argv[1])
print("ran on", ray.get(ray.remote(lambda: ray.get_runtime_context().gcs_address).remote(), timeout=60))
"""

# The same through fedray's cluster mode: init_ray(address, allow_unauthenticated=argv[2]).
JOIN = """
import sys
from fedray.runtime.cluster import init_ray
import ray
init_ray(sys.argv[1], allow_unauthenticated=sys.argv[2] == "allow")
print("ran on", ray.get(ray.remote(lambda: ray.get_runtime_context().gcs_address).remote(), timeout=60))
"""

# fedray's embedded Ray, started as `fedray run` starts it.
EMBEDDED = """
from fedray.runtime.cluster import init_ray
import ray
init_ray(num_cpus=1, object_store_mb=80)
print("ran on", ray.get(ray.remote(lambda: ray.get_runtime_context().gcs_address).remote(), timeout=60))
ray.shutdown()
"""


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment minus every RAY_ variable (no token, token path, address or auth mode),
    with its own HOME (no ~/.ray/auth_token)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def foreign_env(home: Path, **extra: str) -> dict[str, str]:
    # Aim at the loopback address as given (with the flag on, Ray rewrites 127.0.0.1 into the
    # external address, where nothing listens), and give up after 3 refusals instead of 20.
    return clean_env(
        home, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_NUM_REDIS_GET_RETRIES="3", **extra
    )


def python(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=240
    )


def short_tmpdir() -> Path:
    # Ray's socket paths under RAY_TMPDIR must fit in 107 bytes: pytest's tmp_path is too long.
    return Path(tempfile.mkdtemp(prefix="fr-"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gcs_address() -> str:
    return str(ray.get_runtime_context().gcs_address)


# --- the embedded cluster -------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["none", "guessed"])
def test_foreign_process_cannot_run_code_on_the_embedded_cluster(
    ray_cluster: None, tmp_path: Path, token: str
) -> None:
    extra = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = foreign_env(tmp_path, **(extra if token == "guessed" else {}))
    out = python(ATTACK, env, gcs_address())
    assert "ran on" not in out.stdout
    assert out.returncode != 0
    assert "Unauthenticated" in out.stderr and "InvalidAuthToken" in out.stderr, out.stderr[-2000:]


def test_a_request_without_the_token_is_refused(ray_cluster: None) -> None:
    assert accepts_anonymous(gcs_address()) is False


def _listeners() -> list[tuple[str, str, int]]:
    """(process, address, port) of every listening socket of this process and its descendants:
    the session's Ray (GCS, raylet, object manager, workers, agents) runs below the test process."""
    import psutil  # shipped with Ray, importable once Ray is

    me = psutil.Process()
    found = []
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            for c in proc.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN or c.type == socket.SOCK_DGRAM:
                    found.append((proc.name(), c.laddr.ip, c.laddr.port))
    return found


def test_every_listener_of_the_embedded_cluster_is_on_loopback(ray_cluster: None) -> None:
    import psutil

    ray.get([ray.remote(lambda: os.getpid()).remote() for _ in range(2)])  # workers are up
    assert is_loopback(ray.util.get_node_ip_address())
    host, port = gcs_address().rsplit(":", 1)
    assert is_loopback(host)
    listeners = _listeners()
    names = {name for name, _, _ in listeners}
    assert int(port) in {p for _, _, p in listeners} and {"gcs_server", "raylet"} <= names
    exposed = [entry for entry in listeners if not is_loopback(entry[1])]
    assert not exposed, f"listening beyond loopback: {exposed}"
    external = [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET and not is_loopback(a.address)
    ]
    for ip in external:  # this host has one (eth0); from there the GCS port is closed
        with pytest.raises(OSError):
            socket.create_connection((ip, int(port)), timeout=3).close()


@pytest.mark.parametrize("recorded", ["stale", "live"])
def test_embedded_ray_is_its_own_while_another_cluster_is_recorded(
    recorded: str, request: pytest.FixtureRequest
) -> None:
    if recorded == "live":
        head = request.getfixturevalue("open_head")
        root, other = head.root, head.address
    else:
        root, other = short_tmpdir(), f"127.0.0.1:{free_port()}"
        (root / "ray").mkdir()
        (root / "ray" / "ray_current_cluster").write_text(other)  # where `ray start` records it
    (root / "home").mkdir(exist_ok=True)
    try:
        out = python(EMBEDDED, clean_env(root / "home", RAY_TMPDIR=str(root)))
        assert out.returncode == 0, out.stderr[-2000:]
        ran_on = out.stdout.split("ran on ")[-1].strip()
        assert ran_on != other and is_loopback(ran_on.rsplit(":", 1)[0])
    finally:
        if recorded == "stale":
            shutil.rmtree(root, ignore_errors=True)


def test_embedded_ray_refuses_an_auth_mode_other_than_token(tmp_path: Path) -> None:
    out = python(EMBEDDED, clean_env(tmp_path, RAY_AUTH_MODE="none"))
    assert out.returncode != 0 and "ClusterSecurityError" in out.stderr
    assert "keeps token authentication on" in out.stderr


def test_embedded_ray_refuses_when_ray_was_imported_before_fedray(tmp_path: Path) -> None:
    out = python("import ray\n" + EMBEDDED, clean_env(tmp_path))
    assert out.returncode != 0 and "ClusterSecurityError" in out.stderr
    assert "import fedray before ray" in out.stderr


def test_importing_fedray_first_makes_ray_bind_loopback(tmp_path: Path) -> None:
    code = "import fedray.runtime.pool\nfrom ray._private import ray_constants\n"
    code += "print(ray_constants.ENABLE_RAY_CLUSTER)"
    out = python(code, clean_env(tmp_path))
    assert out.stdout.strip() == "False", out.stderr[-2000:]


# --- cluster mode ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpenHead:
    address: str  # its GCS
    root: Path  # its RAY_TMPDIR, where it is recorded as the machine's cluster
    env: dict[str, str]


@pytest.fixture(scope="module")
def open_head() -> Iterator[OpenHead]:
    """A Ray head as `ray start --head` makes one in Ray 2.60 when no token exists: without token
    authentication. Loopback only, recorded in its own temp dir, stopped by its own pid."""
    root = short_tmpdir()
    (root / "home").mkdir()
    env = clean_env(root / "home", RAY_TMPDIR=str(root), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    port = free_port()
    ray_cli = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [
            str(ray_cli if ray_cli.exists() else shutil.which("ray")),
            "start",
            "--head",
            f"--port={port}",
            f"--ray-client-server-port={free_port()}",
            "--num-cpus=1",
            "--object-store-memory=80000000",
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--block",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        recorded = root / "ray" / "ray_current_cluster"  # written once the head is fully up
        while True:
            with contextlib.suppress(Exception):
                if recorded.read_text().strip() == address and accepts_anonymous(address, 2):
                    break
            assert time.monotonic() < deadline and head.poll() is None, "ray start failed"
            time.sleep(0.5)
        yield OpenHead(address, root, env)
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops its processes on SIGTERM
        head.wait(timeout=90)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("address", ["explicit", "auto"])
def test_cli_refuses_a_cluster_without_token_auth(
    open_head: OpenHead, tmp_path: Path, address: str
) -> None:
    target = open_head.address if address == "explicit" else "auto"
    out = subprocess.run(
        [sys.executable, "-m", "fedray.cli", "run", "--address", target, f"output_dir={tmp_path}"],
        env=open_head.env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in out.stderr
    assert f"refusing to join the Ray cluster at {open_head.address}" in errors[0]
    assert "runtime.allow_unauthenticated=true" in errors[0]
    assert not any(tmp_path.iterdir())  # refused before the run directory


def test_auto_without_a_recorded_cluster_is_a_clear_error(ray_cluster: None) -> None:
    # Ray's own `auto` would fall back to any GCS process running here (this session's, at least).
    root = short_tmpdir()
    try:
        env = clean_env(root, RAY_TMPDIR=str(root))
        out = subprocess.run(
            [sys.executable, "-m", "fedray.cli", "run", "--address", "auto"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert out.returncode == 2, out.stderr[-2000:]
        assert "error: --address auto: no Ray cluster is recorded on this machine" in out.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_post_start_check_catches_an_open_instance(open_head: OpenHead) -> None:
    # Connected to an instance without token auth, the check init_ray runs after start refuses it.
    code = f"""
from fedray.runtime.cluster import _check_closed
import ray
ray.init(address="{open_head.address}")
_check_closed()
"""
    out = python(code, open_head.env)
    assert out.returncode != 0 and "ClusterSecurityError" in out.stderr
    assert "answered a request without its token" in out.stderr


def test_joins_a_cluster_without_token_auth_only_when_allowed_and_warns(
    open_head: OpenHead,
) -> None:
    out = python(JOIN, open_head.env, "auto", "allow")  # auto: the cluster the machine records
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("ran on ")[-1].strip() == open_head.address
    assert f"warning: joining the Ray cluster at {open_head.address}" in out.stderr


def test_joins_a_token_cluster_only_with_its_token(ray_cluster: None, tmp_path: Path) -> None:
    # The session cluster is protected; its token is in this process's environment (init_ray).
    without = python(JOIN, clean_env(tmp_path), gcs_address(), "refuse")
    assert without.returncode != 0
    assert "requires token authentication: set RAY_AUTH_MODE=token" in without.stderr
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.environ["RAY_AUTH_TOKEN"]}
    joined = python(JOIN, clean_env(tmp_path, **token), gcs_address(), "refuse")
    assert joined.returncode == 0, joined.stderr[-2000:]
    assert joined.stdout.split("ran on ")[-1].strip() == gcs_address()


@pytest.mark.slow  # about 3 minutes: its own cluster, two live networks, ~20 attacks
def test_adversary_catalogue_reports_every_attack_blocked() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "adversary.py")],
        env=clean_env(Path(os.environ.get("HOME", tempfile.gettempdir()))),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    table = out.stdout[out.stdout.index("\nattack ") :].splitlines()[2:]
    rows = {ln.split("  ")[0]: ln.split("  ", 1)[1].split()[0] for ln in table if ln.strip()}
    assert len(rows) >= 20
    assert {status for name, status in rows.items() if "through Ray" not in name} == {"blocked"}
    for finding in ("[1]", "[2]", "[6]", "[7]", "[10]"):
        assert any(name.startswith(finding) for name in rows), finding
