"""What a block costs must not grow with the number of accounts: the accounts tree copies only the
buckets a block touches (and keeps the root every validator computed before), selection ranks
every candidate as its definition says without sorting them all, and eligibility reads the accounts
before the block with the block's own changes on top; the next validator set reads the accounts
flagged as validators only."""

from __future__ import annotations

import dataclasses

from fedray.core.accounts_tree import _bucket_of
from fedray.core.contracts.selection import eligible_clients, select_clients
from fedray.core.crypto import key_from_seed
from fedray.core.encoding import digest
from fedray.core.journal import Journal
from fedray.core.state import Account, AccountsTree, Genesis, GenesisAccount, ValidatorSet

KEYS = [key_from_seed(b"pop/%d" % i).public_key for i in range(3000)]


def test_an_update_copies_only_the_buckets_it_touches_and_leaves_the_old_tree_alone() -> None:
    old = AccountsTree.build({k: Account(balance=1) for k in KEYS})
    touched = KEYS[:3]
    new = old.updated({k: Account(balance=2) for k in touched})
    dirty = {_bucket_of(k) for k in touched}
    shared = [b for b in range(len(old._buckets)) if new._buckets[b] is old._buckets[b]]
    assert len(shared) == len(old._buckets) - len(dirty)  # every other bucket is the same object
    assert all(old.get(k) == Account(balance=1) for k in touched)
    assert all(new.get(k) == Account(balance=2) for k in touched)
    assert len(new.accounts) == len(old.accounts) == len(KEYS)
    rebuilt = AccountsTree.build({**dict(old.accounts), **{k: Account(balance=2) for k in touched}})
    assert new.root() == rebuilt.root() != old.root()


def test_new_accounts_are_counted_and_found() -> None:
    tree = AccountsTree.build({k: Account() for k in KEYS[:10]})
    grown = tree.updated({KEYS[10]: Account(stake=5)})
    assert len(grown.accounts) == 11 and len(tree.accounts) == 10
    assert KEYS[10] in grown.accounts and KEYS[10] not in tree.accounts
    assert grown.accounts[KEYS[10]].stake == 5 and tree.get(KEYS[10]) is None
    assert sorted(grown.accounts) == sorted(KEYS[:11])


def test_selection_is_the_k_smallest_hashes_of_its_definition() -> None:
    seed = digest(b"round seed")
    for k in (1, 37, 100, len(KEYS)):
        by_definition = sorted(sorted(KEYS, key=lambda key: digest(seed + key))[:k])
        assert select_clients(KEYS, k, seed) == tuple(by_definition)


def test_eligible_clients_are_clients_before_the_block_and_now() -> None:
    staked = [GenesisAccount(k, balance=10, stake=1000, is_client=True) for k in KEYS[:5]]
    validator = GenesisAccount(KEYS[5], stake=10**6, is_validator=True)
    state = Genesis("c", 1_700_000_000_000, (*staked, validator)).state()
    journal = Journal(state)
    journal.update_account(KEYS[0], jailed_until=9)  # jailed in this block: out
    journal.put_account(KEYS[6], Account(stake=1000, is_client=True))  # registered now: out
    journal.update_account(KEYS[1], balance=3)  # only its balance changed: in
    assert eligible_clients(journal) == sorted(KEYS[1:5])


def test_the_next_validator_set_reads_only_flagged_accounts_and_equals_a_full_scan() -> None:
    clients = [GenesisAccount(k, balance=10, stake=1000, is_client=True) for k in KEYS[:50]]
    validators = [
        GenesisAccount(k, stake=5000 + i, is_validator=True) for i, k in enumerate(KEYS[50:54])
    ]
    state = Genesis("c", 1_700_000_000_000, (*clients, *validators)).state()
    assert state.accounts.validator_keys == frozenset(KEYS[50:54])
    journal = Journal(state)
    journal.put_account(KEYS[60], Account(stake=7000, is_validator=True))  # registers
    journal.update_account(KEYS[51], is_validator=False)  # leaves
    journal.update_account(KEYS[52], jailed_until=30)  # jailed: stays flagged, out of the set
    journal.update_account(KEYS[0], is_validator=True, stake=1000)  # a client turns validator
    journal._params = dataclasses.replace(journal.params, min_stake_validator=2000)  # gov change
    full = ValidatorSet.from_accounts(journal.all_accounts(), journal.params)
    assert journal.next_validator_set() == full
    assert full.keys == tuple(sorted([KEYS[50], KEYS[53], KEYS[60]]))
    after = journal.finish()
    assert after.accounts.validator_keys == frozenset(
        [KEYS[0], KEYS[50], KEYS[52], KEYS[53], KEYS[60]]
    )
