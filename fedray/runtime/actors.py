"""fedray's Ray actors, each a facade that exposes exactly the methods listed here.

Ray makes every function of an actor class callable by whoever holds a handle, underscored helpers
included (`_admit`, `_fail`, `_sign_request` would be remote entry points). So the actor classes are
not the node classes themselves: each is a facade holding its node and forwarding only the methods
named in its `*_METHODS` list, which is the whole remote surface (docs/security.md says who may call
each and what it checks). A facade's `__init__` runs once; the classes are sealed and run in the
hardened runtime environment (`hardening`). `ValidatorNode.subscribe` stays in-process only: a
hardened validator resolves no actor class but fedray's, so it could not call a foreign subscriber.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import ray

from fedray.errors import FedrayError
from fedray.runtime.hardening import HARDENED, sealed
from fedray.runtime.ingress import IngressNode
from fedray.runtime.pool import PoolNode
from fedray.runtime.validator import ValidatorNode

VALIDATOR_CONCURRENCY = 256  # concurrent calls into one validator (receive, long polls, queries)

VALIDATOR_METHODS = (
    # operator (operator capability)
    "connect",
    "start",
    "shutdown",
    "put_blob",
    "wait_for_height",
    # its own ingress (ingress capability)
    "admit_checked",
    "submit_evidence",
    # peers (signed messages, signed blob requests) and anyone
    "receive",
    "get_blob",
    "submit_txs",
    "status",
    "committed_range",
    "block_hashes",
    "commit_stats",
    "account_nonces",
    "round_info",
    "accounts_info",
    "economy_info",
    "governance_info",
)
INGRESS_METHODS = ("submit", "round_info", "account_nonces", "stats")
POOL_METHODS = ("public_keys", "train_round", "vote")


class FacadeError(FedrayError):
    """An actor facade was initialised twice."""

    code = "facade"


def _forward(name: str, target: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(target):

        async def forward_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            return await getattr(self._node, name)(*args, **kwargs)

        forward_async.__name__ = name
        return forward_async

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._node, name)(*args, **kwargs)

    forward.__name__ = name
    return forward


def facade(name: str, node_class: type, methods: tuple[str, ...]) -> type:
    """A class named `name` whose instances hold a `node_class` and forward `methods` to it."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if getattr(self, "_node", None) is not None:
            raise FacadeError(f"{name} is already initialised")
        self._node = node_class(*args, **kwargs)

    namespace: dict[str, Any] = {
        "__init__": __init__,
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"The remote face of `{node_class.__name__}`: {', '.join(methods)}.",
    }
    for method in methods:
        namespace[method] = _forward(method, getattr(node_class, method))
    return type(name, (), namespace)


ValidatorService = facade("ValidatorService", ValidatorNode, VALIDATOR_METHODS)
IngressService = facade("IngressService", IngressNode, INGRESS_METHODS)
PoolService = facade("PoolService", PoolNode, POOL_METHODS)

ValidatorActor = sealed(
    ray.remote(max_concurrency=VALIDATOR_CONCURRENCY, runtime_env=HARDENED)(ValidatorService)
)
IngressActor = sealed(ray.remote(runtime_env=HARDENED)(IngressService))
PoolActor = sealed(ray.remote(runtime_env=HARDENED)(PoolService))
