"""Connecting to Ray: an embedded local instance by default, or an existing cluster.

A local instance keeps all its traffic on loopback: `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` must be set
before `ray.init` (Ray then binds 127.0.0.1 instead of the machine's external address), and the
dashboard is off. Only a user-given address (`--address`, `runtime.address` or `RAY_ADDRESS`) reaches
elsewhere. A start that fails halfway is shut down before the error propagates, so it leaves no Ray
process behind.
"""

from __future__ import annotations

import os
from typing import Any

LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


def cluster_address(explicit: str | None) -> str | None:
    return explicit or os.environ.get("RAY_ADDRESS") or None


def init_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    object_store_mb: int = 256,
    **kwargs: Any,
) -> bool:
    """Connect to `address` (or RAY_ADDRESS), else start an embedded loopback-only instance.
    Returns True when this call started Ray (the caller then shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    target = cluster_address(address)
    if target:
        ray.init(address=target, **kwargs)
        return True
    for key, value in LOCAL_ENV.items():
        os.environ[key] = value
    try:
        ray.init(
            num_cpus=num_cpus,
            object_store_memory=object_store_mb * 1024 * 1024,
            include_dashboard=False,
            **kwargs,
        )
    except BaseException:
        shutdown_ray()  # a start that failed halfway leaves no process behind
        raise
    return True


def shutdown_ray() -> None:
    """Disconnect, and stop every process an embedded instance started (Ray waits for them)."""
    import ray

    ray.shutdown()
