"""Connecting to Ray: fedray's own embedded instance by default, or an authenticated cluster.

Embedded (no address, or `local`): always a new instance that belongs to this process
(`ray.init(address="local")`), whatever cluster the machine records (`ray start` leaves its address
in `ray_current_cluster` under Ray's temp directory, and a stale one stays there). It is closed:
- every listener (GCS, raylet, object manager, workers, agents) is on 127.0.0.1. Ray picks the node
  address from `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER` once, when it is first imported: `fedray/__init__`
  sets it to 0 before any fedray module imports Ray, and `init_ray` refuses to start an instance if
  Ray was imported with it on;
- Ray's token authentication is on (Ray 2.60's default for a local instance; `RAY_AUTH_MODE` other
  than `token` is refused). The token is made for this process (`RAY_AUTH_TOKEN` in the environment
  that Ray's processes inherit, unless the caller set one) and never written to disk;
- no dashboard.
After starting, `init_ray` checks that the node address is loopback and that the GCS refuses a
request without the token, and shuts Ray down otherwise.

Cluster mode (`--address`, `runtime.address` or `RAY_ADDRESS`; `auto` joins the recorded cluster):
before joining, fedray sends the cluster one request that carries no token. A cluster that answers
it runs without token authentication: fedray refuses to join unless `allow_unauthenticated`
(`runtime.allow_unauthenticated=true`), and then warns on every run. A cluster that refuses it is
joined with the caller's token (`RAY_AUTH_MODE=token` plus `RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH`
or `~/.ray/auth_token`).

A start that fails halfway is shut down before the error propagates, and `shutdown_ray`
(`processes`) waits for every process the embedded instance started: none outlives the command.

Ignored here: encryption between nodes (Ray's `RAY_USE_TLS` settings, which the probe honours; see
docs/security.md), and anyone who can already run code as the user that runs fedray.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from fedray.errors import FedrayError
from fedray.runtime.processes import shutdown_ray, track_start

__all__ = ["ClusterSecurityError", "cluster_address", "init_ray", "shutdown_ray"]

NODE_FLAG = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
AUTH_MODE = "RAY_AUTH_MODE"
AUTH_TOKEN = "RAY_AUTH_TOKEN"
AUTH_TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"
PROBE_TIMEOUT_S = 10.0


class ClusterSecurityError(FedrayError):
    """Ray would run open to others: an embedded node not on loopback or not token-protected, or a
    cluster to join that accepts requests without a token."""

    code = "cluster_security"


class ClusterUnreachableError(FedrayError):
    """The cluster to join cannot be found or does not answer."""

    code = "cluster_unreachable"


def cluster_address(explicit: str | None) -> str | None:
    """The cluster to join (`explicit`, else RAY_ADDRESS); None or `local`: the embedded instance."""
    return explicit or os.environ.get("RAY_ADDRESS") or None


def is_loopback(host: str) -> bool:
    """Whether `host` (an IP address, IPv4-mapped IPv6 included) is a loopback address."""
    ip = ipaddress.ip_address(host.strip("[]"))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _channel_without_token(target: str) -> Any:
    """A gRPC channel to `target` that never sends a token (TLS when Ray's RAY_USE_TLS is on)."""
    import grpc

    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        from ray._common.tls_utils import load_certs_from_env

        cert, key, ca = load_certs_from_env()
        creds = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )
        return grpc.secure_channel(target, creds)
    return grpc.insecure_channel(target)


def accepts_anonymous(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the Ray cluster at `address` (its GCS `host:port`, or `ray://host:port` for its Ray
    client server) answers a request that carries no token, i.e. runs without token authentication.
    Raises ClusterUnreachableError when it does not answer at all."""
    import grpc

    if address.startswith("ray://"):
        from ray.core.generated import ray_client_pb2, ray_client_pb2_grpc

        target = address.removeprefix("ray://").split("/")[0]
        request = ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING)

        def call(channel: Any) -> None:
            ray_client_pb2_grpc.RayletDriverStub(channel).ClusterInfo(request, timeout=timeout_s)

    else:
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

        target = address

        def call(channel: Any) -> None:
            stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout_s)

    with _channel_without_token(target) as channel:
        try:
            call(channel)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                return False
            raise ClusterUnreachableError(
                f"cannot reach the Ray cluster at {address}: {exc.code().name}: {exc.details()}"
            ) from None
    return True


def _has_token_source() -> bool:
    return bool(
        os.environ.get(AUTH_TOKEN)
        or os.environ.get(AUTH_TOKEN_PATH)
        or (Path.home() / ".ray" / "auth_token").exists()
    )


def _resolve(target: str) -> str:
    """A concrete address for `target`. `auto` is RAY_ADDRESS if set, else the cluster this machine
    records (as Ray resolves it), never Ray's fallback to any GCS process it finds running."""
    if target != "auto":
        return target
    from ray._private.services import find_bootstrap_address

    env = os.environ.get("RAY_ADDRESS")
    found = env if env and env != "auto" else find_bootstrap_address(None)
    if not found:
        raise ClusterUnreachableError(
            "--address auto: no Ray cluster is recorded on this machine (`ray start --head` "
            "records one); leave the address out to run on fedray's own embedded Ray"
        )
    return str(found)


def _join_cluster(target: str, allow_unauthenticated: bool, **kwargs: Any) -> None:
    import ray

    address = _resolve(target)
    if accepts_anonymous(address):
        if not allow_unauthenticated:
            raise ClusterSecurityError(
                f"refusing to join the Ray cluster at {address}: it runs without token "
                "authentication (it answered a request that carried no token), so anyone who "
                "reaches it can run code on it; enable token authentication on it (cluster/"
                "README.md) or set runtime.allow_unauthenticated=true to join it anyway"
            )
        print(
            f"warning: joining the Ray cluster at {address}, which runs without token "
            "authentication (runtime.allow_unauthenticated=true): anyone who reaches it can run "
            "code on it and read this run's data and keys",
            file=sys.stderr,
            flush=True,
        )
    else:
        # Ray turns the token on by itself only for `auto` (from a token it finds); never send a
        # local token to an explicit address unless the user said so with RAY_AUTH_MODE=token.
        mode_ok = os.environ.get(AUTH_MODE) == "token" or (
            target == "auto" and AUTH_MODE not in os.environ
        )
        if not (mode_ok and _has_token_source()):
            raise ClusterSecurityError(
                f"the Ray cluster at {address} requires token authentication: set "
                f"{AUTH_MODE}=token and give its token in {AUTH_TOKEN} (or {AUTH_TOKEN_PATH}, "
                "or ~/.ray/auth_token)"
            )
    ray.init(address=target, **kwargs)


def _start_embedded(num_cpus: int | None, object_store_mb: int, **kwargs: Any) -> None:
    import ray
    from ray._private import ray_constants

    if ray_constants.ENABLE_RAY_CLUSTER:
        raise ClusterSecurityError(
            f"Ray was imported with {NODE_FLAG} on, so an embedded instance would listen on every "
            f"network interface: import fedray before ray, or set {NODE_FLAG}=0 in the environment"
        )
    mode = os.environ.get(AUTH_MODE)
    if mode is not None and mode != "token":
        raise ClusterSecurityError(
            f"{AUTH_MODE}={mode}: fedray's embedded Ray keeps token authentication on; unset "
            f"{AUTH_MODE} or set it to token"
        )
    if not os.environ.get(AUTH_TOKEN):
        os.environ[AUTH_TOKEN] = secrets.token_hex(32)
    # Ray announces that token auth is on and how to opt out; fedray allows no opting out (above)
    announcer = logging.getLogger("ray._private.authentication.authentication_token_setup")
    level = announcer.level
    announcer.setLevel(logging.ERROR)
    try:
        with track_start():
            ray.init(
                address="local",
                num_cpus=num_cpus,
                object_store_memory=object_store_mb * 1024 * 1024,
                include_dashboard=False,
                **kwargs,
            )
        _check_closed()
    except BaseException:
        shutdown_ray()  # a start that failed halfway, or an open instance, leaves no process
        raise
    finally:
        announcer.setLevel(level)


def _check_closed() -> None:
    """The running embedded instance is on loopback and refuses requests without its token."""
    import ray

    node_ip = ray.util.get_node_ip_address()
    if not is_loopback(node_ip):
        raise ClusterSecurityError(
            f"the embedded Ray node took the address {node_ip}, not loopback"
        )
    gcs = ray.get_runtime_context().gcs_address
    if accepts_anonymous(gcs):
        raise ClusterSecurityError(
            f"the embedded Ray instance at {gcs} answered a request without its token"
        )


def init_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    object_store_mb: int = 256,
    *,
    allow_unauthenticated: bool = False,
    **kwargs: Any,
) -> bool:
    """Join `address` (or RAY_ADDRESS; `auto`: the recorded cluster) if it authenticates its
    clients, else start fedray's own closed instance (module docstring). Returns True when this
    call connected Ray (the caller then shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    target = cluster_address(address)
    if target and target != "local":
        _join_cluster(target, allow_unauthenticated, **kwargs)
    else:
        _start_embedded(num_cpus, object_store_mb, **kwargs)
    return True
