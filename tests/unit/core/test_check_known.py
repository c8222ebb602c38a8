"""A transaction the node already checked (`BlockEnv.checked`) is not decoded or verified again
during execution, but the size limit, the one rule that can change since, still applies, and an
entry is trusted only for the very bytes it was made from."""

from __future__ import annotations

import pytest

from fedray.core.context import BlockEnv
from fedray.core.contracts.accounts import Transfer
from fedray.core.crypto import key_from_seed
from fedray.core.transition import check_tx, check_tx_stateless
from fedray.core.tx import SignedTx, make_tx
from fedray.errors import OversizedError, SignatureError

CHAIN = "known"
KEY = key_from_seed(b"known")
GOOD = make_tx(KEY, CHAIN, 0, Transfer(key_from_seed(b"to").public_key, 5))
FORGED = SignedTx(GOOD.tx, bytes(64)).raw


def test_a_known_transaction_is_answered_from_the_environment() -> None:
    checked = check_tx_stateless(GOOD.raw, CHAIN, 4096)
    env = BlockEnv(checked={GOOD.raw: checked})
    assert check_tx(GOOD.raw, CHAIN, 4096, env) is checked
    assert check_tx(GOOD.raw, CHAIN, 4096, BlockEnv()) == checked  # the same answer unknown


def test_the_size_limit_still_applies_to_a_known_transaction() -> None:
    env = BlockEnv(checked={GOOD.raw: check_tx_stateless(GOOD.raw, CHAIN, 4096)})
    with pytest.raises(OversizedError):
        check_tx(GOOD.raw, CHAIN, len(GOOD.raw) - 1, env)


def test_an_entry_is_trusted_only_for_its_own_bytes_and_chain() -> None:
    checked = check_tx_stateless(GOOD.raw, CHAIN, 4096)
    with pytest.raises(SignatureError):
        check_tx(FORGED, CHAIN, 4096, BlockEnv(checked={FORGED: checked}))
    other = make_tx(KEY, "other-chain", 0, Transfer(KEY.public_key, 5))
    misfiled = BlockEnv(checked={GOOD.raw: check_tx_stateless(other.raw, "other-chain", 4096)})
    assert check_tx(GOOD.raw, CHAIN, 4096, misfiled) == checked
