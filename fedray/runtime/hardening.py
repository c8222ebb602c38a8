"""What Ray lets any caller do to an actor, and how fedray's actors refuse it.

Ray has no caller identity: whoever holds (or rebuilds, from the actor id the GCS lists) an actor
handle may call every method of it. Three of Ray's own mechanisms would turn that into code
execution inside the actor; fedray closes them in every actor that serves untrusted callers
(validators, ingresses, client pools), and the first in the run driver too:

- Arguments, return values and objects in the object store are Python pickles, and unpickling runs
  code of the sender's choosing (a `__reduce__` naming `os.system`), before any method can check
  anything. `guard_unpickling` replaces `ray.cloudpickle.loads` in the process with an unpickler
  that resolves only an allow-list of globals: containers, numpy arrays and dtypes, Ray's
  object-ref and actor-handle reducers, exceptions of Ray, builtins and fedray, and fedray's wire
  types (`WIRE_MODULES`). Anything else is refused before it is imported; the call fails.
- An actor handle in an argument makes Ray load that actor's class, unpickled from the GCS
  function table, which any client can write. `local_actor_classes` makes the process resolve
  fedray's actor classes from its own installed code (`ACTOR_CLASSES`) and every other class to an
  inert stand-in with no methods; so does the actor's own class at creation.
- `__ray_call__(fn)`, which Ray adds to every actor class, runs any function on the actor
  instance. `sealed` replaces it with one that refuses.

And one that crashes the actor: a call of a method the actor lacks kills its worker (a Ray bug);
`refuse_unknown_methods` answers it with an error instead.

Ray also makes every function of an actor class remotely callable, underscored helpers included
(`_admit`, `_fail`, `_sign_request` would be entry points). So fedray's actor classes are facades
(`facade`): each holds its node and forwards only the methods its module lists (`VALIDATOR_METHODS`
in `faces`, `INGRESS_METHODS`, `POOL_METHODS`), which is the whole remote surface
(docs/security.md). A facade's `__init__` runs once.

`HARDENED` is the runtime environment of fedray's actors: its setup hook (`harden_worker`, named
by module path, so nothing is unpickled to run it) does the first two before the worker loads any
actor class or argument. Each node's `__init__` installs the guard again (idempotent), so an actor
started without that environment is still guarded for every call after its construction.

Deliberately ignored (Ray's, documented in docs/security.md): killing an actor (`ray.kill` with a
handle rebuilt from its id), and code that leaves Ray's API (the same Unix user's files, ptrace).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import io
import pickle
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fedray.errors import FedrayError


class SealedMethodError(FedrayError):
    """A Ray built-in that would run a caller's code inside a fedray actor."""

    code = "sealed"


class FacadeError(FedrayError):
    """An actor facade was initialised twice."""

    code = "facade"


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list (it would run code on load)."""


# (module, qualified name) pairs any fedray process may resolve while unpickling.
SAFE_GLOBALS = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("builtins", "complex"),
        ("builtins", "slice"),
        ("collections", "OrderedDict"),
        ("collections", "deque"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "scalar"),
        ("ray._private.serialization", "_object_ref_deserializer"),
        ("ray._private.serialization", "_actor_handle_deserializer"),
        ("ray.actor", "ActorHandle._deserialization_helper"),
        ("ray.util.placement_group", "PlacementGroup"),  # what pg.ready() returns the driver
        ("ray._raylet", "PlacementGroupID"),
    }
)
# Modules whose frozen dataclasses and enums cross actor boundaries as values (views, evidence).
WIRE_MODULES = frozenset(
    {
        "fedray.config_schema",  # a pool's RunConfig (its dataclasses live there)
        "fedray.core.crypto",  # a pool's client keys (runtime.keys=fresh)
        "fedray.core.contracts.slashing",  # PayloadEvidence
        "fedray.federation.shards",  # PoolShards (a pool's clients' samples)
        "fedray.node.views",
        "fedray.runtime.faces",  # NodeStatus
        "fedray.runtime.ingress",  # IngressReport
        "fedray.runtime.pool",  # PoolFaults (a pool's injected faults)
    }
)
# fedray's actor classes, by the (module, class name) Ray records for them: the ActorClass bound
# in that module under the second name.
ACTOR_CLASSES = {
    ("fedray.runtime.validator", "ValidatorService"): "ValidatorActor",
    ("fedray.runtime.ingress", "IngressService"): "IngressActor",
    ("fedray.runtime.pool", "PoolService"): "PoolActor",
}
# The worker runs the hook named by this variable at start, before it loads any actor class or
# argument (ray/_private/workers/default_worker.py; Ray converts a `worker_process_setup_hook` into
# it only for a job's runtime environment, not an actor's, so fedray sets it directly).
SETUP_HOOK_VAR = "__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR"
HARDENED = {"env_vars": {SETUP_HOOK_VAR: "fedray.runtime.hardening.harden_worker"}}
# Modules whose exception classes may be rebuilt (a peer's error reaches the caller as one).
EXCEPTION_MODULES = ("builtins", "fedray.", "ray.exceptions")


def _allowed(module: str, name: str, obj: object) -> bool:
    if (module, name) in SAFE_GLOBALS:
        return True
    if not isinstance(obj, type):
        return False  # functions, methods and other callables: never
    if issubclass(obj, BaseException):
        return any(module == m or module.startswith(m) for m in EXCEPTION_MODULES)
    if module in WIRE_MODULES:
        frozen = dataclasses.is_dataclass(obj) and obj.__dataclass_params__.frozen  # type: ignore[attr-defined]
        return bool(frozen) or issubclass(obj, enum.Enum)
    return False


def _known_module(module: str) -> bool:
    if any(module == m or module.startswith(m) for m in EXCEPTION_MODULES):
        return True
    return module in WIRE_MODULES or any(module == m for m, _ in SAFE_GLOBALS)


class GuardedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves only allowed globals (see module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        if not _known_module(module):  # refuse before importing anything the sender names
            raise RefusedGlobalError(f"refused to unpickle {module}.{name}")
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if obj is None or not _allowed(module, name, obj):
            raise RefusedGlobalError(f"refused to unpickle {module}.{name}")
        return obj


def guarded_loads(
    data: bytes | bytearray | memoryview,
    /,
    *,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
    buffers: Any = None,
) -> Any:
    """Drop-in for `pickle.loads` that refuses every global outside the allow-list."""
    unpickler = GuardedUnpickler(
        io.BytesIO(data), fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers
    )
    return unpickler.load()


_original: Callable[..., Any] | None = None


def guard_unpickling() -> None:
    """Make every unpickling Ray does in this process go through `guarded_loads` (idempotent)."""
    global _original
    import ray.cloudpickle

    if _original is None:
        _original = ray.cloudpickle.loads
    ray.cloudpickle.loads = guarded_loads


def unguard_unpickling() -> None:
    global _original
    import ray.cloudpickle

    if _original is not None:
        ray.cloudpickle.loads = _original
        _original = None


@contextmanager
def guarded() -> Iterator[None]:
    """Unpickling guarded for the duration (the run driver: pools and peers answer it)."""
    already = _original is not None
    guard_unpickling()
    try:
        yield
    finally:
        if not already:
            unguard_unpickling()


def _resolve_actor_class(manager: Any, job_id: Any, descriptor: Any) -> Any:
    """Stand-in for Ray's `_load_actor_class_from_gcs`: fedray's classes from local code, any
    other class as an inert stand-in (never unpickled)."""
    module, name = descriptor.module_name, descriptor.class_name
    bound = ACTOR_CLASSES.get((module, name))
    if bound is None:
        return manager._create_fake_actor_class(
            name, [], f"fedray refuses to load actor class {module}.{name} in this process"
        )
    return getattr(importlib.import_module(module), bound).__ray_metadata__.modified_class


def local_actor_classes() -> None:
    """Resolve actor classes as `_resolve_actor_class` does in this worker (idempotent)."""
    import ray

    manager = ray._private.worker.global_worker.function_actor_manager
    manager._load_actor_class_from_gcs = lambda job_id, descriptor: _resolve_actor_class(
        manager, job_id, descriptor
    )


def _no_such_method(self: object, *args: object, **kwargs: object) -> None:
    raise SealedMethodError("no such remote method")


def refuse_unknown_methods() -> None:
    """Answer a call of a method the actor lacks with an error. (Ray looks methods up in a
    defaultdict whose default, `{}`, makes its executor raise outside the task's error handling:
    the worker dies, so any caller could crash an actor by naming a method it lacks.)"""
    import ray
    from ray._private.function_manager import FunctionExecutionInfo

    manager = ray._private.worker.global_worker.function_actor_manager
    executor = manager._make_actor_method_executor("no_such_method", _no_such_method)
    refusal = FunctionExecutionInfo(function=executor, function_name="no_such_method", max_calls=0)
    table: defaultdict[Any, Any] = defaultdict(lambda: refusal)
    table.update(manager._function_execution_info)
    manager._function_execution_info = table


def harden_worker() -> None:
    """The setup hook of fedray's actor workers (`HARDENED`)."""
    guard_unpickling()
    local_actor_classes()
    refuse_unknown_methods()


def in_ray_actor() -> bool:
    import ray

    return ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None


def _refuse_ray_call(self: object, fn: object, *args: object, **kwargs: object) -> None:
    raise SealedMethodError("__ray_call__ is sealed on fedray actors")


def sealed(actor_class: Any) -> Any:
    """`actor_class` (the result of `ray.remote(cls)`) with `__ray_call__` refusing every call
    (on the class Ray built, which it ships by value or `_resolve_actor_class` finds locally)."""
    actor_class.__ray_metadata__.modified_class.__ray_call__ = _refuse_ray_call
    return actor_class


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
        "__module__": node_class.__module__,
        "__qualname__": name,
        "__doc__": f"The remote face of `{node_class.__name__}`: {', '.join(methods)}.",
    }
    for method in methods:
        namespace[method] = _forward(method, getattr(node_class, method))
    return type(name, (), namespace)
