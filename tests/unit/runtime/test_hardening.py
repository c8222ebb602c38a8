"""What a caller's bytes can do to a fedray actor, without a cluster: the guarded unpickler refuses a
pickle that would run code (or load any class outside the allow-list) before importing what it
names, and rebuilds everything fedray sends between actors; a hardened worker resolves fedray's
actor classes from local code and any other to an inert stand-in; the actor classes are facades
whose only remote methods are the listed ones, with `__ray_call__` sealed."""

from __future__ import annotations

import importlib
import inspect
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import ray.cloudpickle as cloudpickle
from ray._private.inspect_util import is_function_or_method

from fedray.config import load_config
from fedray.core.contracts.slashing import PayloadEvidence
from fedray.core.crypto import key_from_seed
from fedray.errors import BlobError
from fedray.node.views import RoundInfo, RoundResultView
from fedray.runtime.access import AccessDeniedError
from fedray.runtime.faces import VALIDATOR_METHODS, NodeStatus
from fedray.runtime.hardening import (
    ACTOR_CLASSES,
    RefusedGlobalError,
    SealedMethodError,
    _resolve_actor_class,
    guarded_loads,
)
from fedray.runtime.ingress import INGRESS_METHODS, IngressActor, IngressReport
from fedray.runtime.pool import POOL_METHODS, PoolActor
from fedray.runtime.validator import ValidatorActor


class RunsCode:
    """What an attacker pickles: unpickling it calls os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def dumps(value: object) -> bytes:
    return cloudpickle.dumps(value, protocol=5)


def test_a_pickle_that_runs_code_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = dumps([RunsCode(marker)])
    pickle.loads(evil)  # the attack works on plain pickle...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(RefusedGlobalError):  # ...and not on the guarded one
        guarded_loads(evil)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        lambda: None,  # a function (cloudpickle ships it by value, with its code)
        type("Dynamic", (), {"x": 1}),  # a class defined at run time
        __import__("subprocess").Popen,  # an importable class that does harm when called
        np.load,  # an importable function
        Path("/etc/passwd"),  # a harmless class outside the allow-list
        key_from_seed,
    ],
)
def test_anything_outside_the_allow_list_is_refused(payload: object) -> None:
    with pytest.raises(RefusedGlobalError):
        guarded_loads(dumps(payload))


def test_what_fedray_sends_between_actors_comes_back_whole() -> None:
    cfg = load_config(None, ["clients=3"])
    view = RoundResultView(0, 1, 2, "quota", b"a", b"b", 3, 2, 1, 0, 1, (b"c",), (7,))
    info = RoundInfo(5, 0, True, 1, 9, b"g", (b"k",), 1, 1, "0.05", "median", (view,))
    status = NodeStatus("n", 1, 0, 2, b"h", b"r", 0, 0, 0.5, 0, 0, None, 42)
    values = [
        {"w": np.arange(6, dtype=np.int32).reshape(2, 3), "b": np.float32(1.5)},
        info,
        status,
        IngressReport(2, ("bad_signature",)),
        PayloadEvidence(b"tx", b"d" * 32, b"s" * 64),
        {b"k": 3, "set": {1, 2}, "fs": frozenset({b"x"})},
        cfg,
        key_from_seed(b"client"),
        AccessDeniedError("no"),
        BlobError("missing"),
        ValueError("plain"),
    ]
    for value in values:
        back = guarded_loads(dumps(value))
        if isinstance(value, dict) and "w" in value:
            assert np.array_equal(back["w"], value["w"]) and back["b"] == value["b"]
        elif isinstance(value, Exception):
            assert type(back) is type(value) and back.args == value.args
        else:
            assert back == value
    buffers: list[pickle.PickleBuffer] = []
    big = {"w": np.ones(1 << 16, dtype=np.int32)}
    data = cloudpickle.dumps(big, protocol=5, buffer_callback=buffers.append)
    assert np.array_equal(guarded_loads(data, buffers=buffers)["w"], big["w"])  # out of band


def test_a_hardened_worker_loads_only_fedray_actor_classes_and_from_local_code() -> None:
    class Manager:  # the part of Ray's FunctionActorManager the resolver uses
        @staticmethod
        def _create_fake_actor_class(name: str, methods: list[str], why: str) -> type:
            return type("Inert", (), {"why": why})

    class Descriptor:
        def __init__(self, module: str, name: str) -> None:
            self.module_name, self.class_name = module, name

    for (module, name), bound in ACTOR_CLASSES.items():
        cls = _resolve_actor_class(Manager, None, Descriptor(module, name))
        assert (
            cls is getattr(importlib.import_module(module), bound).__ray_metadata__.modified_class
        )
    attacker = _resolve_actor_class(Manager, None, Descriptor("__main__", "Evil"))
    assert attacker.__name__ == "Inert" and "refuses" in attacker.why
    sneaky = _resolve_actor_class(
        Manager, None, Descriptor("fedray.runtime.validator", "ValidatorNode")
    )
    assert sneaky.__name__ == "Inert"  # the bare node, with its underscored helpers: never


@pytest.mark.parametrize(
    ("actor", "methods"),
    [
        (ValidatorActor, VALIDATOR_METHODS),
        (IngressActor, INGRESS_METHODS),
        (PoolActor, POOL_METHODS),
    ],
)
def test_an_actor_exposes_its_listed_methods_and_nothing_else(
    actor: object, methods: tuple
) -> None:
    modified = actor.__ray_metadata__.modified_class  # type: ignore[attr-defined]
    # what Ray turns into remote methods (ray.actor._ActorClassMethodMetadata.create)
    remote = {name for name, _ in inspect.getmembers(modified, is_function_or_method)}
    assert remote - {"__init__", "__ray_call__", "__ray_ready__", "__ray_terminate__"} == set(
        methods
    )
    assert not any(m.startswith("_") for m in methods)
    with pytest.raises(SealedMethodError):
        modified.__ray_call__(object(), lambda self: self)
    assert "subscribe" not in VALIDATOR_METHODS and "admit_checked" in VALIDATOR_METHODS
