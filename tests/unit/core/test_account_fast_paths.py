"""The hand-written account paths give what the generic ones give: a leaf hash equal to the digest
of the canonical encoding (state roots must not move), and account copies equal to
`dataclasses.replace`, refusing what it refuses."""

from __future__ import annotations

import dataclasses
import random

import pytest

from fedray.core.accounts_tree import Account, _leaf, copy_account
from fedray.core.devchain import dev_genesis
from fedray.core.encoding import UINT64_MAX, digest, encode
from fedray.core.journal import Journal
from fedray.errors import FedrayError

EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, UINT64_MAX]


def generic_leaf(key: bytes, account: Account) -> bytes:
    return digest(encode([key, account.to_canonical()]))


def random_account(rng: random.Random) -> Account:
    def n() -> int:
        return rng.choice(EDGES) if rng.random() < 0.5 else rng.randrange(UINT64_MAX + 1)

    return Account(n(), n(), n(), rng.random() < 0.5, rng.random() < 0.5, n(), rng.random() < 0.5)


def test_leaf_hash_is_the_digest_of_the_canonical_encoding() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        key = rng.randbytes(32)
        account = random_account(rng)
        assert _leaf(key, account) == generic_leaf(key, account)


@pytest.mark.parametrize(
    "account",
    [
        Account(balance=UINT64_MAX + 1),  # out of range: the generic encoder refuses it
        Account(jailed_until=-1),
    ],
)
def test_leaf_of_an_out_of_range_account_raises_as_the_generic_encoder(account: Account) -> None:
    with pytest.raises(FedrayError):
        generic_leaf(bytes(32), account)
    with pytest.raises(FedrayError):
        _leaf(bytes(32), account)


def test_leaf_of_an_odd_key_or_flag_takes_the_generic_encoder() -> None:
    odd = [
        (bytes(31), Account(balance=5)),
        (bytes(32), Account(is_client=1)),  # type: ignore[arg-type]  # an int, not a bool
    ]
    for key, account in odd:
        try:
            expected = generic_leaf(key, account)
        except FedrayError:
            with pytest.raises(FedrayError):
                _leaf(key, account)
        else:
            assert _leaf(key, account) == expected


def test_copy_account_equals_replace_and_leaves_the_original() -> None:
    rng = random.Random(3)
    for _ in range(200):
        old = random_account(rng)
        changes = {"balance": rng.randrange(100), "nonce": rng.randrange(100)}
        new = copy_account(old, changes)
        assert new == dataclasses.replace(old, **changes)
        assert type(new) is Account and hash(new) == hash(dataclasses.replace(old, **changes))
        assert old == dataclasses.replace(new, **{k: getattr(old, k) for k in changes})


def test_copy_account_refuses_an_unknown_field() -> None:
    with pytest.raises(TypeError):
        copy_account(Account(), {"balanse": 1})


def test_journal_update_refuses_overflow_and_is_undone() -> None:
    genesis, _, keys = dev_genesis("fast-paths", n_accounts=1)
    journal = Journal(genesis.state())
    key = keys[0].public_key
    before = journal.account(key)
    save = journal.savepoint()
    journal.update_account(key, balance=7)
    assert journal.account(key) == dataclasses.replace(before, balance=7)  # type: ignore[arg-type]
    journal.revert(save)
    assert journal.account(key) == before
    for field in ("balance", "stake", "nonce"):
        with pytest.raises(FedrayError, match=field):
            journal.update_account(key, **{field: UINT64_MAX + 1})
        with pytest.raises(FedrayError, match=field):
            journal.update_account(key, **{field: -1})
    assert journal.account(key) == before
    assert journal.account_or_empty(bytes(32)) == Account()
