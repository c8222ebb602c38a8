"""Who may call what on a validator, in process (no Ray): a transfer with a zero signature is refused
whichever way a caller submits it, and nothing a caller can send marks it verified (finding 1);
operator and ingress methods refuse a missing or wrong capability, `put_blob` is bounded by the
model's size, and an open round's payload goes only to a validator that asks with a fresh signed
request, while global models and closed rounds' payloads are public (finding 2)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fedray.core.contracts.accounts import Transfer
from fedray.core.contracts.rounds import RoundResult, UpdateRecord
from fedray.core.crypto import key_from_seed
from fedray.core.devchain import dev_genesis
from fedray.core.encoding import encode
from fedray.core.tx import SignedTx, Tx, make_tx, to_canonical_map
from fedray.errors import BlobError
from fedray.runtime.access import (
    INGRESS,
    OPERATOR,
    REQUEST_WINDOW_MS,
    AccessDeniedError,
    Capabilities,
    capability,
    check_blob_request,
    released,
    sign_blob_request,
)
from fedray.runtime.node_settings import prepare_node_dir
from fedray.runtime.validator import ValidatorNode

CHAIN = "fedray-access"
NOW = 1_800_000_000_000


@pytest.fixture
def node(tmp_path: Path):  # type: ignore[no-untyped-def]
    genesis, vkeys, akeys = dev_genesis(CHAIN, n_validators=1, n_accounts=2)
    path = prepare_node_dir(tmp_path / "v0", vkeys[0])
    n = ValidatorNode(str(path), encode(genesis.to_canonical()))
    n.akeys = akeys  # type: ignore[attr-defined]
    yield n
    n.app.close()


def zero_signature_transfer(sender: bytes, to: bytes) -> bytes:
    tx = Tx(CHAIN, sender, 0, 1_000_000, "transfer", to_canonical_map(Transfer(to, 500_000)))
    return SignedTx(tx, b"\x00" * 64).raw


def set_rounds(node: ValidatorNode, **changes: object) -> None:
    """Stand the node's committed state at a rounds section with `changes` (as blocks would)."""
    state = node.app.state
    rounds = replace(state.section("rounds"), **changes)
    node.app.state = replace(state, sections={**state.sections, "rounds": rounds})


def test_a_zero_signature_transfer_is_refused_however_it_is_submitted(node) -> None:  # type: ignore[no-untyped-def]
    victim, thief = node.akeys[0].public_key, node.akeys[1].public_key
    forged = zero_signature_transfer(victim, thief)

    async def attack() -> None:
        with pytest.raises(TypeError):  # no flag to skip verification exists any more
            await node.submit_txs([forged], True)
        [refusal] = await node.submit_txs([forged])
        assert refusal["code"] == "bad_signature"
        with pytest.raises(AccessDeniedError):
            await node.admit_checked(b"\x00" * 32, [forged])
        with pytest.raises(AccessDeniedError):
            await node.admit_checked(node.caps.operator, [forged])  # the wrong role's capability

    asyncio.run(attack())
    assert len(node.app.mempool) == 0 and not node.app.verified
    honest = make_tx(node.akeys[0], CHAIN, 0, Transfer(thief, 5)).raw
    assert asyncio.run(node.submit_txs([honest])) == []  # the door is still open to signed ones


def test_operator_and_ingress_methods_refuse_a_missing_or_wrong_capability(node) -> None:  # type: ignore[no-untyped-def]
    wrong = capability(key_from_seed(b"someone else"), OPERATOR)
    calls = [
        lambda cap: node.connect(cap, []),
        lambda cap: node.start(cap),
        lambda cap: node.shutdown(cap),
        lambda cap: node.put_blob(cap, {}),
        lambda cap: node.wait_for_height(cap, 1, 0.01),
        lambda cap: node.subscribe(cap, object()),
        lambda cap: node.submit_evidence(cap, None),
    ]

    async def attack() -> None:
        for call in calls:
            for cap in (b"", wrong, None, node.caps.operator[:31], "x" * 32):
                if call is calls[-1] and cap == node.caps.operator:
                    continue
                with pytest.raises(AccessDeniedError):
                    await call(cap)

    asyncio.run(attack())
    assert node.driver is None and not node.closed  # nothing started or stopped


def test_put_blob_takes_at_most_the_models_size(node) -> None:  # type: ignore[no-untyped-def]
    set_rounds(node, model_nbytes=64)  # a 16-coordinate int32 model
    cap = node.caps.operator
    ok = {"w": np.zeros(16, np.int32)}
    assert asyncio.run(node.put_blob(cap, ok)) == node.app.blobs.put(ok)
    with pytest.raises(BlobError):
        asyncio.run(node.put_blob(cap, {"w": np.zeros(17, np.int32)}))
    with pytest.raises(BlobError):
        asyncio.run(node.put_blob(cap, {"w": [0] * 4}))  # type: ignore[dict-item]


def test_capabilities_are_per_validator_and_per_role() -> None:
    a, b = key_from_seed(b"a"), key_from_seed(b"b")
    caps = {capability(k, r) for k in (a, b) for r in (OPERATOR, INGRESS)}
    assert len(caps) == 4 and all(len(c) == 32 for c in caps)
    assert Capabilities.of(a) == Capabilities(capability(a, OPERATOR), capability(a, INGRESS))
    with pytest.raises(AccessDeniedError):
        capability(a, "root")


def test_an_open_rounds_payload_needs_a_fresh_request_signed_by_a_validator(node) -> None:  # type: ignore[no-untyped-def]
    state, digest = node.app.state, b"\x07" * 32
    me, client = node.key, node.akeys[0]
    good = sign_blob_request(me, CHAIN, digest, NOW)
    assert check_blob_request(good, state, digest, NOW + REQUEST_WINDOW_MS) == me.public_key
    refused = [
        (b"", NOW),  # no request
        (b"\xff\x00", NOW),  # not canonical bytes
        (sign_blob_request(me, CHAIN, b"\x08" * 32, NOW), NOW),  # another blob
        (good, NOW + REQUEST_WINDOW_MS + 1),  # stale
        (sign_blob_request(client, CHAIN, digest, NOW), NOW),  # a client, not a validator
        (sign_blob_request(me, "other-chain", digest, NOW), NOW),  # signed for another chain
        (encode([digest, NOW, me.public_key, b"\x00" * 64]), NOW),  # forged signature
    ]
    for raw, now in refused:
        with pytest.raises(AccessDeniedError):
            check_blob_request(raw, state, digest, now)


def test_get_blob_serves_released_blobs_to_anyone_and_open_payloads_to_validators(node) -> None:  # type: ignore[no-untyped-def]
    payload = {"w": np.arange(4, dtype=np.int32)}
    model = {"w": np.ones(4, dtype=np.int32)}
    digest, model_hash = node.app.blobs.put(payload), node.app.blobs.put(model)

    async def get(d: bytes, request: bytes = b"") -> dict[str, np.ndarray]:
        return await node.get_blob(d, request)

    with pytest.raises(AccessDeniedError):  # pinned, round open: a client may not read it
        asyncio.run(get(digest))
    request = sign_blob_request(node.key, CHAIN, digest, node.now_ms())
    assert np.array_equal(asyncio.run(get(digest, request))["w"], payload["w"])
    set_rounds(node, global_hash=model_hash)
    assert released(node.app.state, model_hash) and not released(node.app.state, digest)
    assert np.array_equal(asyncio.run(get(model_hash))["w"], model["w"])  # the global model
    result = RoundResult(
        0, 1, 2, "quota", model_hash, model_hash, (), (UpdateRecord(b"c", digest, 1, 16, b"t"),), ()
    )
    set_rounds(node, results=(result,), used_payloads=frozenset({digest}))  # as a close sets them
    assert np.array_equal(asyncio.run(get(digest))["w"], payload["w"])  # its round closed


class CountedResults(tuple):  # type: ignore[type-arg]
    """Closed rounds that count how often they are walked."""

    walks = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        CountedResults.walks += 1
        return super().__iter__()


def test_a_flood_of_requests_for_unreleased_blobs_walks_the_history_once(node) -> None:  # type: ignore[no-untyped-def]
    zero = bytes([200]) * 32  # the all-zero update's digest (any digest no model has)

    def closed(r: int, zero_used: bool = False) -> RoundResult:
        updates = [UpdateRecord(bytes([c]), bytes([r, c]) * 16, 1, 16, b"t") for c in range(20)]
        if zero_used:
            updates[0] = UpdateRecord(b"z", zero, 1, 16, b"t")
        before, after = bytes([r]) * 32, bytes([r + 1]) * 32
        return RoundResult(r, r, r + 1, "quota", before, after, (), tuple(updates), ())

    CountedResults.walks = 0
    set_rounds(node, results=CountedResults(closed(r) for r in range(50)), zero_hash=zero)
    state = node.app.state
    assert all(released(state, bytes([r]) * 32) for r in (0, 3, 50))  # every model, first to last
    assert not released(state, zero)  # the all-zero update: no closed round used it
    for n in range(200):  # the attack: requests for digests nobody released
        assert not released(state, n.to_bytes(32, "big") + b"x")
    assert CountedResults.walks <= 2  # once to build the models, once for the zero update
    with_zero = CountedResults([*(closed(r) for r in range(49)), closed(49, zero_used=True)])
    set_rounds(node, results=with_zero)
    assert released(node.app.state, zero)  # a new section: walked afresh
