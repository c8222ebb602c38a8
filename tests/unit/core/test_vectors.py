"""Run every conformance vector in tests/vectors and check the files match their generator.

A must-reject vector names, by hand, the rule its input breaks (the error class), the error code
and the index of the rejected transaction; the implementation must reject with exactly those."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

import fedray.core  # noqa: F401
from fedray.core.block import Block
from fedray.core.context import ExecContext
from fedray.core.transition import apply_block, apply_tx
from fedray.errors import FedrayError

VECTOR_DIR = Path(__file__).resolve().parents[2] / "vectors"
sys.path.insert(0, str(VECTOR_DIR))
from codec import state_from_json, state_to_json  # noqa: E402

VECTORS = sorted(VECTOR_DIR.glob("*.json"))


def test_there_are_enough_vectors() -> None:
    assert len(VECTORS) >= 40
    rejects = [json.loads(p.read_text()) for p in VECTORS]
    rejects = [v for v in rejects if v["post"] is None]
    assert len(rejects) >= 25
    assert all(v["error"]["rule"].endswith("Error") for v in rejects)


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path: Path) -> None:
    vector = json.loads(path.read_text())
    pre = state_from_json(vector["pre"])
    assert pre.root().hex() == vector["pre"]["root"], "pre-state does not round-trip"
    result = None
    error: tuple[int | None, str, str] | None = None  # (tx index, code, rule)
    if "block" in vector:
        try:
            result = apply_block(pre, Block.from_bytes(bytes.fromhex(vector["block"])))
        except FedrayError as exc:
            error = (None, exc.code, type(exc).__name__)
    else:
        c = vector["context"]
        ctx = ExecContext(c["height"], c["time"], bytes.fromhex(c["proposer"]))
        state = pre
        for index, raw in enumerate(vector["txs"]):
            try:
                state = apply_tx(state, bytes.fromhex(raw), ctx)
            except FedrayError as exc:
                error = (index, exc.code, type(exc).__name__)
                break
        result = state
    if vector["post"] is None:
        assert error is not None, "input must be rejected"
        want = vector["error"]
        assert error == (want["index"], want["code"], want["rule"])
    else:
        assert error is None, f"unexpected rejection {error}"
        assert state_to_json(result) == vector["post"]
    # The input state is never modified. `replace` copies the fields into a State without the
    # cached root, so the root is recomputed from the (possibly mutated) accounts and sections.
    assert state_to_json(dataclasses.replace(pre)) == vector["pre"], "the input state was modified"


def test_files_match_generator() -> None:
    import generate

    files = generate.generate()
    on_disk = {p.stem: p.read_text() for p in VECTORS}
    assert set(files) == set(on_disk)
    for name, text in files.items():
        assert on_disk[name] == text, f"{name}.json is stale: run python tests/vectors/generate.py"
