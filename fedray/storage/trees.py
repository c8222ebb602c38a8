"""Nested state (dicts, lists, scalars and numpy arrays) as safetensors bytes, and back.

What a stateful attack carries across rounds (replay's recorded updates, keyed by client index) has
to outlive the process that holds it, so a resumed run restores it. The arrays go into a safetensors
file as raw buffers, the shape of the tree into its metadata as JSON: nothing is pickled, and the
decoder accepts only the node kinds it writes.

Ignores: object identity and sharing (a tree is written as a tree), tuples (read back as lists).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import safetensors.numpy

from fedray.errors import StorageError

Tree = Any  # dict[str | int, Tree] | list[Tree] | np.ndarray | str | int | float | bool | None


def tree_to_bytes(tree: Tree) -> bytes:
    """`tree` as safetensors bytes (arrays as tensors, the structure as metadata)."""
    arrays: dict[str, np.ndarray] = {}

    def node(value: Tree) -> Any:
        if isinstance(value, np.ndarray):
            name = f"a{len(arrays)}"
            arrays[name] = np.ascontiguousarray(value)
            return {"a": name}
        if isinstance(value, dict):
            items = []
            for k, v in value.items():
                if not isinstance(k, str | int) or isinstance(k, bool):
                    raise StorageError(f"tree keys are str or int, got {type(k).__name__}")
                items.append([["i" if isinstance(k, int) else "s", k], node(v)])
            return {"d": items}
        if isinstance(value, list | tuple):
            return {"l": [node(v) for v in value]}
        if value is None or isinstance(value, str | int | float | bool):
            return {"v": value}
        raise StorageError(f"cannot store a {type(value).__name__} in a state tree")

    meta = json.dumps(node(tree), separators=(",", ":"))
    return bytes(safetensors.numpy.save(arrays, metadata={"fedray_tree": meta}))


def tree_from_bytes(data: bytes) -> Tree:
    """The tree `tree_to_bytes` wrote; anything else is a `StorageError`."""
    try:
        arrays = safetensors.numpy.load(bytes(data))
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        shape = json.loads(header["__metadata__"]["fedray_tree"])
    except Exception as exc:  # the parsers raise their own types for malformed input
        raise StorageError(f"not a fedray state tree: {exc}") from None

    def node(value: Any) -> Tree:
        if not isinstance(value, dict) or len(value) != 1:
            raise StorageError("malformed state tree node")
        ((kind, body),) = value.items()
        if kind == "a" and body in arrays:
            return arrays[body]
        if kind == "d":
            out: dict[str | int, Tree] = {}
            for (key_kind, key), child in body:
                out[int(key) if key_kind == "i" else str(key)] = node(child)
            return out
        if kind == "l":
            return [node(v) for v in body]
        if kind == "v":
            return body
        raise StorageError(f"unknown state tree node {kind!r}")

    return node(shape)
