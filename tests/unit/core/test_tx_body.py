"""The signed body of a transaction, cut from its canonical bytes (`SignedTx.body`), is exactly the
body encoded from its fields, for every kind and payload size, decoded or built; so a signature
verifies against the same bytes as before and a forged one is still refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedray.core.contracts.accounts import Stake, Transfer
from fedray.core.crypto import key_from_seed
from fedray.core.tx import SignedTx, Tx, make_tx, to_canonical_map
from fedray.errors import SignatureError

KEY = key_from_seed(b"body")
OTHER = key_from_seed(b"other").public_key


@settings(max_examples=60, deadline=None)
@given(
    chain=st.text(min_size=1, max_size=64),
    nonce=st.integers(0, 2**64 - 1),
    amount=st.integers(1, 2**64 - 1),
    gas=st.integers(0, 2**64 - 1),
    stake=st.booleans(),
)
def test_the_cut_body_equals_the_encoded_body(
    chain: str, nonce: int, amount: int, gas: int, stake: bool
) -> None:
    payload = Stake(amount) if stake else Transfer(OTHER, amount)
    built = make_tx(KEY, chain, nonce, payload, gas_limit=gas)
    decoded = SignedTx.decode(built.raw)
    assert built.body == decoded.body == built.tx.body_bytes()
    decoded.verify_signature()


def test_a_forged_signature_is_refused_against_the_cut_body() -> None:
    good = make_tx(KEY, "c", 3, Transfer(OTHER, 9))
    forged = SignedTx.decode(SignedTx(good.tx, bytes(63) + b"\x07").raw)
    with pytest.raises(SignatureError):
        forged.verify_signature()
    other_body = Tx(
        "c", KEY.public_key, 4, good.tx.gas_limit, "transfer", to_canonical_map(Transfer(OTHER, 9))
    )
    replayed = SignedTx.decode(SignedTx(other_body, good.signature).raw)
    with pytest.raises(SignatureError):
        replayed.verify_signature()
