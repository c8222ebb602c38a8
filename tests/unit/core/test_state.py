"""World state: incremental root equals a full rebuild; snapshots round-trip; genesis rules."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fedray.core  # noqa: F401
from fedray.core.crypto import key_from_seed
from fedray.core.devchain import dev_genesis
from fedray.core.state import Account, AccountsTree, Genesis, GenesisAccount, State
from fedray.errors import FedrayError

KEYS = [key_from_seed(bytes([i])).public_key for i in range(40)]
accounts_st = st.dictionaries(
    st.sampled_from(KEYS),
    st.builds(
        Account,
        balance=st.integers(0, 10**12),
        stake=st.integers(0, 10**9),
        nonce=st.integers(0, 100),
    ),
    max_size=20,
)


@given(accounts_st, accounts_st)
def test_incremental_root_equals_rebuild(
    base: dict[bytes, Account], changes: dict[bytes, Account]
) -> None:
    tree = AccountsTree.build(base).updated(changes)
    merged = {**base, **changes}
    assert tree.root() == AccountsTree.build(merged).root()
    assert dict(tree.accounts) == merged


def test_root_changes_with_any_field() -> None:
    genesis, _, akeys = dev_genesis()
    state = genesis.state()
    key = akeys[0].public_key
    roots = {state.root()}
    for field in ("balance", "stake", "nonce", "jailed_until"):
        acct = dataclasses.replace(state.account(key), **{field: 12345})
        roots.add(dataclasses.replace(state, accounts=state.accounts.updated({key: acct})).root())
    roots.add(dataclasses.replace(state, height=7).root())
    roots.add(
        dataclasses.replace(state, params=dataclasses.replace(state.params, gas_price=2)).root()
    )
    assert len(roots) == 7


def test_snapshot_round_trip() -> None:
    genesis, _, _ = dev_genesis()
    state = genesis.state()
    again = State.from_bytes(state.to_bytes())
    assert again.root() == state.root()
    assert again.to_bytes() == state.to_bytes()


def test_genesis_rules() -> None:
    key = key_from_seed(b"g").public_key
    with pytest.raises(FedrayError, match="no validator"):
        Genesis("c", 0, (GenesisAccount(key, balance=5),)).state()
    with pytest.raises(FedrayError, match="twice"):
        Genesis("c", 0, (GenesisAccount(key, stake=5000, is_validator=True),) * 2).state()
    genesis, _, _ = dev_genesis()
    assert Genesis.from_canonical(genesis.to_canonical()).hash() == genesis.hash()
    assert genesis.state().last_block_hash == genesis.hash()
