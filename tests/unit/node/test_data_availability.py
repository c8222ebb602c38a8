"""Which payload a transaction needs pinned before a block with it can execute (one definition,
used by proposals, proposal checks and catch-up)."""

from __future__ import annotations

from fedray.core.contracts.accounts import Transfer
from fedray.core.contracts.rounds import Update
from fedray.core.contracts.slashing import PayloadEvidence
from fedray.core.crypto import key_from_seed
from fedray.core.tx import make_tx
from fedray.node.app import LedgerApp

KEY = key_from_seed(b"client")
CHAIN = "test-chain"


def update_tx(payload_hash: bytes) -> bytes:
    return make_tx(KEY, CHAIN, 0, Update(0, payload_hash, 10, 400)).raw


def test_an_update_needs_its_payload_and_other_kinds_need_none() -> None:
    assert LedgerApp.needed_payload(update_tx(b"\x01" * 32)) == b"\x01" * 32
    transfer = make_tx(KEY, CHAIN, 0, Transfer(b"\x02" * 32, 5)).raw
    assert LedgerApp.needed_payload(transfer) is None
    assert LedgerApp.needed_payload(b"\xff not a transaction") is None


def test_payload_evidence_needs_the_delivered_payload_only_when_the_hashes_agree() -> None:
    signed = update_tx(b"\x03" * 32)
    same = make_tx(KEY, CHAIN, 1, PayloadEvidence(signed, b"\x03" * 32, b"s" * 64)).raw
    other = make_tx(KEY, CHAIN, 1, PayloadEvidence(signed, b"\x04" * 32, b"s" * 64)).raw
    assert LedgerApp.needed_payload(same) == b"\x03" * 32  # re-checked from the pinned bytes
    assert LedgerApp.needed_payload(other) is None  # the mismatch is proven by signatures
