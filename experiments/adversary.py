"""Attack fedray as an adversary would, and report one row per attack: blocked, or what it achieved.

    python experiments/adversary.py            # every attack in CATALOGUE; exit 1 if any succeeds
                                               # (2 if an attack could not be carried out; a LIMIT
                                               # row, a power Ray gives every worker, is shown
                                               # and not counted: docs/security.md)
    python experiments/adversary.py --list     # the attack names
    python experiments/adversary.py --only "foreign process"   # attacks whose name contains this

Each attack is a function `(lab) -> Outcome` registered in CATALOGUE under a name that says what the
adversary does. `Lab` starts what the attacks aim at, once and only when an attack asks for it, and
stops it at the end; add an attack by writing its function (and, if it needs a new target, a `Lab`
method) and appending it to CATALOGUE.

Attacks on the Ray boundary run from separate processes with nothing of the run's secrets: another
HOME (so no ~/.ray/auth_token), no RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or RAY_ADDRESS. They aim at
the loopback address, the strongest position short of running as the run's own user: a peer on the
network cannot even reach a loopback listener, which the external-interface attack checks.

Attacks on the protocol (adversary_protocol.py) aim at a live local network on that cluster
(adversary_chain.py): four validators with their ingresses, fresh keys, round 0 open. The attacker
is a client: its code runs in an actor of its own with the ingress handles pools get, its own
client key, and whatever Ray's API gives any worker (adversary_client.py). Findings of issue 10 are
named in brackets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import fedray  # noqa: F401  (before ray: the embedded instance must bind loopback)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling attack modules
import adversary_protocol as chain  # noqa: E402
from adversary_chain import ChainLab, Outcome  # noqa: E402


@dataclass(frozen=True)
class EmbeddedCluster:
    """fedray's embedded Ray, started as `fedray run` starts it (`init_ray`, no address)."""

    gcs_address: str
    listeners: tuple[tuple[str, str, int], ...]  # (process name, address, port) of its sockets


@dataclass
class Lab:
    """The targets, started on first use."""

    cluster: EmbeddedCluster | None = None
    network: ChainLab | None = None
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fedray-adv-")))

    def embedded_cluster(self) -> EmbeddedCluster:
        if self.cluster is None:
            import ray

            from fedray.runtime.cluster import init_ray

            init_ray(num_cpus=2, object_store_mb=384)
            ray.get(ray.remote(_remote_pid).remote())  # a worker is up: its sockets count
            self.cluster = EmbeddedCluster(
                gcs_address=ray.get_runtime_context().gcs_address,
                listeners=tuple(_listeners_of_this_process_tree()),
            )
        return self.cluster

    def foreign_home(self) -> Path:
        home = self.scratch / "foreign-home"
        home.mkdir(exist_ok=True)
        return home

    def chain(self) -> ChainLab:
        """The live network, started on first use."""
        if self.network is None:
            self.embedded_cluster()
            self.network = ChainLab.start(self.scratch / "chain")
        return self.network

    def close_chain(self) -> None:
        if self.network is not None:
            self.network.stop()
            self.network = None

    def close(self) -> None:
        self.close_chain()
        if self.cluster is not None:
            import ray

            ray.shutdown()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _remote_pid() -> int:
    return os.getpid()


def _listeners_of_this_process_tree() -> Iterator[tuple[str, str, int]]:
    import psutil  # shipped with Ray, importable once Ray is

    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN or conn.type == socket.SOCK_DGRAM:
                    yield proc.name(), conn.laddr.ip, conn.laddr.port


def _external_addresses() -> list[str]:
    import psutil

    from fedray.runtime.cluster import is_loopback

    return [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET and not is_loopback(a.address)
    ]


# --- the foreign process -------------------------------------------------------------------------
def foreign_env(home: Path, **extra: str) -> dict[str, str]:
    """No token, no token path, no address, no auth mode, another HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # aim at the loopback address as given (with the flag on, Ray rewrites 127.0.0.1 to the
    # machine's external address, where nothing listens), and stop after 3 refusals, not 20
    env.update(HOME=str(home), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_NUM_REDIS_GET_RETRIES="3")
    env.update(extra)
    return env


def foreign_connect(address: str) -> None:
    """Run in the foreign process: join `address` and run a function there; print the result."""
    import ray

    try:
        ray.init(address=address)
        pid = ray.get(ray.remote(_remote_pid).remote(), timeout=60)
        print(json.dumps({"ran": True, "detail": f"ran a function in worker pid {pid}"}))
    except Exception as exc:  # the refusal is what we came to see
        print(json.dumps({"ran": False, "detail": f"{type(exc).__name__}: {exc}"}))


def _run_foreign(address: str, env: dict[str, str]) -> Outcome:
    out = subprocess.run(
        [sys.executable, __file__, "--foreign-connect", address],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return Outcome("not run", f"foreign process exited {out.returncode}: {out.stderr[-300:]}")
    result = json.loads(lines[-1])
    if result["ran"]:
        return Outcome("ACHIEVED", result["detail"])
    why = [ln for ln in out.stderr.splitlines() if "Unauthenticated" in ln or "AuthToken" in ln]
    # Ray logs the refusal as "[time W pid] file.cc:line: message": keep the message
    reason = re.sub(r"^.*?\] \S+:\d+: ", "", why[0]) if why else result["detail"]
    return Outcome("blocked", f"refused: {reason}")


# --- attacks -------------------------------------------------------------------------------------
def foreign_process_connects(lab: Lab) -> Outcome:
    cluster = lab.embedded_cluster()
    return _run_foreign(cluster.gcs_address, foreign_env(lab.foreign_home()))


def foreign_process_guesses_token(lab: Lab) -> Outcome:
    cluster = lab.embedded_cluster()
    env = foreign_env(
        lab.foreign_home(), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32)
    )
    return _run_foreign(cluster.gcs_address, env)


def anonymous_gcs_request(lab: Lab) -> Outcome:
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    cluster = lab.embedded_cluster()
    with grpc.insecure_channel(cluster.gcs_address) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            reply = stub.GetAllNodeInfo(gcs_service_pb2.GetAllNodeInfoRequest(), timeout=10)
        except grpc.RpcError as exc:
            return Outcome("blocked", f"refused: {exc.code().name}: {exc.details()}")
    return Outcome("ACHIEVED", f"listed {len(reply.node_info_list)} nodes with their addresses")


def network_peer_reaches_ray(lab: Lab) -> Outcome:
    from fedray.runtime.cluster import is_loopback

    cluster = lab.embedded_cluster()
    exposed = [
        f"{name} on {ip}:{port}" for name, ip, port in cluster.listeners if not is_loopback(ip)
    ]
    if exposed:
        return Outcome("ACHIEVED", "listening beyond loopback: " + ", ".join(exposed))
    external = _external_addresses()
    if not external:
        return Outcome("not run", "this host has no external interface to aim at")
    port = int(cluster.gcs_address.rsplit(":", 1)[1])
    for ip in external:
        with contextlib.suppress(OSError), socket.create_connection((ip, port), timeout=3):
            return Outcome("ACHIEVED", f"connected to the GCS port through {ip}:{port}")
    return Outcome(
        "blocked",
        f"all {len(cluster.listeners)} Ray sockets on loopback; GCS port refused on "
        + ", ".join(external),
    )


def on_chain(attack: Callable[[ChainLab], Outcome]) -> Callable[[Lab], Outcome]:
    return lambda lab: attack(lab.chain())


def missing_payload(lab: Lab) -> Outcome:
    lab.embedded_cluster()
    lab.close_chain()  # its own network: it kills and restarts validators
    return chain.missing_payload_catch_up(lab.scratch / "catch-up")


CATALOGUE: list[tuple[str, Callable[[Lab], Outcome]]] = [
    ("foreign process connects to the embedded cluster", foreign_process_connects),
    ("foreign process connects with a guessed token", foreign_process_guesses_token),
    ("anonymous gRPC request to the embedded GCS", anonymous_gcs_request),
    ("network peer reaches the embedded cluster's ports", network_peer_reaches_ray),
    ("[1] client submits a transfer with a zero signature", on_chain(chain.forged_transfer)),
    ("[2] client calls a validator's operator methods", on_chain(chain.operator_methods)),
    ("[2] client calls a validator's internal methods", on_chain(chain.internal_methods)),
    ("[2] client runs code in an actor via __ray_call__", on_chain(chain.ray_call)),
    ("[2] client sends pickles that run code on load", on_chain(chain.pickled_code)),
    ("[2] client hands a validator its own actor class", on_chain(chain.foreign_class)),
    ("[2] client reads an update before its round closes", on_chain(chain.payload_theft)),
    ("[2] client makes another pool's clients act", on_chain(chain.pool_capability)),
    ("client forges a proposal and votes", on_chain(chain.forged_consensus)),
    ("client replays a committed transaction", on_chain(chain.replayed_transaction)),
    ("client sends transactions of another chain", on_chain(chain.cross_chain)),
    ("[7] client sends malformed items in a shared batch", on_chain(chain.malformed_batch)),
    ("client sends oversized payloads and transactions", on_chain(chain.oversized)),
    ("[10] client re-derives keys from config.yaml", on_chain(chain.derived_keys)),
    ("client kills a validator actor through Ray", on_chain(chain.kill_validator)),
    ("[6] validator catches up while a payload is unreachable", missing_payload),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the attack names and exit")
    parser.add_argument("--only", default="", help="run the attacks whose name contains this")
    parser.add_argument("--foreign-connect", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.foreign_connect:
        foreign_connect(args.foreign_connect)
        return 0
    chosen = [(name, attack) for name, attack in CATALOGUE if args.only in name]
    if args.list:
        print("\n".join(name for name, _ in chosen))
        return 0
    lab = Lab()
    rows: list[tuple[str, Outcome]] = []
    try:
        for name, attack in chosen:
            try:
                outcome = attack(lab)
            except Exception as exc:  # one broken attack must not hide the others' rows
                outcome = Outcome("ERROR", f"{type(exc).__name__}: {exc}")
            rows.append((name, outcome))
    finally:
        lab.close()
    width = max(len(name) for name, _ in rows)
    print(f"\n{'attack':<{width}}  {'outcome':<8}  detail")
    for name, outcome in rows:
        print(f"{name:<{width}}  {outcome.status:<8}  {outcome.detail}")
    if any(o.status == "ACHIEVED" for _, o in rows):
        return 1
    return 2 if any(o.status == "ERROR" for _, o in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
