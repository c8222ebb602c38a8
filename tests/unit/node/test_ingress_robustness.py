"""The ingress judges every submitted item alone, with a typed error (finding 7): a payload that is
not a mapping of names to arrays (a list, an int, a string, a bare array, object arrays), a
transaction that is not bytes and a signature that is not bytes are refused with their own rule,
never an exception; a valid payload sent as safetensors bytes is admitted (its header does not count
against the size cap); an int32 payload outside the fixed-point range is refused and not pinned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedray.core.contracts.rounds import Update
from fedray.core.crypto import key_from_seed
from fedray.core.tx import make_tx
from fedray.node.ingress import Admitted, Ingress, Refused
from fedray.storage.blobs import BlobStore
from fedray.storage.tensors import (
    MAX_HEADER_BYTES,
    TensorSpec,
    nbytes,
    tensors_digest,
    to_safetensors,
)

CHAIN = "fedray-ingress"
KEY = key_from_seed(b"ingress-client")
LAYOUT = {"a.weight": ("<i4", (3, 4)), "a.bias": ("<i4", (4,))}


def payload(fill: int = 1) -> dict[str, np.ndarray]:
    return {n: np.full(shape, fill, dtype=np.int32) for n, (_, shape) in LAYOUT.items()}


def update_tx(p: dict[str, np.ndarray], nonce: int = 0) -> bytes:
    return make_tx(KEY, CHAIN, nonce, Update(0, tensors_digest(p), 10, nbytes(p))).raw


@pytest.fixture
def ingress(tmp_path: Path) -> Ingress:
    return Ingress(CHAIN, 65_536, BlobStore(tmp_path / "blobs"), TensorSpec(LAYOUT))


@pytest.mark.parametrize(
    "bad",
    [
        [np.zeros(4, np.int32)],  # a list
        7,  # an int
        "a.weight",  # a string
        np.zeros((3, 4), np.int32),  # a bare array
        {"a.weight": [[0] * 4] * 3, "a.bias": [0] * 4},  # lists where arrays belong
        {1: np.zeros(4, np.int32)},  # a name that is not a string
        {"a.weight": np.zeros((3, 4), object), "a.bias": np.zeros(4, object)},  # object arrays
    ],
)
def test_a_payload_of_the_wrong_form_is_refused_with_a_typed_error(
    ingress: Ingress, bad: object
) -> None:
    result = ingress.admit(update_tx(payload()), bad)  # type: ignore[arg-type]
    assert isinstance(result, Refused) and result.evidence is None
    assert result.rejection.code == "submission_form"


def test_items_that_are_not_bytes_are_refused_with_a_typed_error(ingress: Ingress) -> None:
    for raw in (None, 12, "tx", ["tx"]):
        result = ingress.admit(raw, payload())  # type: ignore[arg-type]
        assert isinstance(result, Refused) and result.rejection.code == "submission_form"
    p = payload(2)
    result = ingress.admit(update_tx(p), p, 12345)  # type: ignore[arg-type]
    assert isinstance(result, Admitted)  # a delivery signature is only needed for evidence


def test_a_valid_payload_sent_as_safetensors_bytes_is_admitted(ingress: Ingress) -> None:
    p = payload(3)
    data = to_safetensors(p)
    assert len(data) > nbytes(p) == ingress.max_payload_bytes  # the header is on top of the cap
    result = ingress.admit(update_tx(p), data)
    assert isinstance(result, Admitted) and ingress.blobs.has(tensors_digest(p))


def test_safetensors_bytes_beyond_the_cap_are_refused_before_parsing(ingress: Ingress) -> None:
    big = {"a.weight": np.zeros((3, 4), np.int32), "a.bias": np.zeros(5, np.int32)}
    result = ingress.admit(update_tx(big), to_safetensors(big))
    assert isinstance(result, Refused) and result.rejection.code == "payload_size"
    header = (MAX_HEADER_BYTES + 1).to_bytes(8, "little") + b"{" * 16
    result = ingress.admit(update_tx(payload()), header)
    assert isinstance(result, Refused) and result.rejection.code == "payload_size"


def test_an_int32_payload_outside_the_fixed_point_range_is_refused_and_not_pinned(
    ingress: Ingress,
) -> None:
    p = payload(0)
    p["a.bias"][2] = np.iinfo(np.int32).min  # -2**31: no negation in int32
    result = ingress.admit(update_tx(p), p)
    assert isinstance(result, Refused) and result.rejection.code == "payload_range"
    assert not ingress.blobs.has(tensors_digest(p)) and ingress.pinned_bytes == 0
    edge = payload(0)
    edge["a.bias"][2] = -(2**31 - 1)  # the most negative value inside the range
    assert isinstance(ingress.admit(update_tx(edge), edge), Admitted)


@pytest.mark.parametrize("value", [2**31, -(2**31), 2**40])
def test_an_int64_payload_outside_the_fixed_point_range_is_refused(
    tmp_path: Path, value: int
) -> None:
    """int64 holds values past both bounds: the upper one is checked too, not only int32's."""
    wide = {n: ("<i8", shape) for n, (_, shape) in LAYOUT.items()}
    ingress = Ingress(CHAIN, 65_536, BlobStore(tmp_path / "blobs"), TensorSpec(wide))
    p = {n: np.zeros(shape, dtype=np.int64) for n, (_, shape) in wide.items()}
    p["a.weight"][1, 2] = value
    result = ingress.admit(update_tx(p), p)
    assert isinstance(result, Refused) and result.rejection.code == "payload_range"
    p["a.weight"][1, 2] = 2**31 - 1  # the largest value inside the range
    assert isinstance(ingress.admit(update_tx(p, 1), p), Admitted)
