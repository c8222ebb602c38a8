"""The driver's copy of the client accounts: read in full once, then only what a round could have
changed (its selected clients, the open round's, penalized ones), in full every round when
governance acts, and in chunks a validator takes when the run's summary wants every one; the values
are the chain's."""

from __future__ import annotations

import dataclasses

import pytest

from fedray.core.crypto import key_from_seed
from fedray.core.state import Account, Genesis, GenesisAccount, State
from fedray.federation import client_accounts
from fedray.federation.client_accounts import ClientAccounts
from fedray.node.views import EconomyInfo, PenaltyView, RoundResultView, accounts_info

CLIENTS = [key_from_seed(b"ca/%d" % i).public_key for i in range(12)]


def _state() -> State:
    accounts = tuple(GenesisAccount(k, balance=100, stake=1000, is_client=True) for k in CLIENTS)
    validator = GenesisAccount(key_from_seed(b"ca/v").public_key, stake=10**6, is_validator=True)
    return Genesis("ca", 1_700_000_000_000, (*accounts, validator)).state()


def _result(selected: list[bytes]) -> RoundResultView:
    return RoundResultView(
        round=0,
        opened_at=1,
        closed_at=5,
        reason="all",
        global_before=b"",
        global_after=b"",
        selected=len(selected),
        included=0,
        accepted=0,
        clipped=0,
        rejected=0,
        clients=(),
        weights=(),
        selected_clients=tuple(selected),
    )


def test_after_the_first_round_only_what_the_round_touched_is_read() -> None:
    chain = {"state": _state()}
    asked: list[list[bytes]] = []

    def fetch(keys: list[bytes]) -> dict[bytes, object]:
        asked.append(list(keys))
        return accounts_info(chain["state"], keys)

    copy = ClientAccounts(CLIENTS, fetch)  # type: ignore[arg-type]
    none = EconomyInfo(0, 0, ())
    first = copy.after_round(_result(CLIENTS[:2]), (), none)
    assert asked == [CLIENTS] and all(first[k].balance == 100 for k in CLIENTS)
    s = chain["state"]
    changed = {k: Account(balance=7, stake=1000, is_client=True) for k in CLIENTS[:5]}
    chain["state"] = dataclasses.replace(s, accounts=s.accounts.updated(changed))
    penalty = PenaltyView("freeride", CLIENTS[4], 3, 1, 0, False, 3)
    second = copy.after_round(_result(CLIENTS[:2]), CLIENTS[2:3], EconomyInfo(0, 1, (penalty,)))
    assert sorted(asked[-1]) == sorted([*CLIENTS[:3], CLIENTS[4]])  # selected, open, penalized
    assert [second[k].balance for k in CLIENTS[:5]] == [7, 7, 7, 100, 7]  # CLIENTS[3]: not read
    assert copy.queried == len(CLIENTS) + 4


def test_with_governance_every_round_reads_every_client() -> None:
    state = _state()
    asked: list[int] = []

    def fetch(keys: list[bytes]) -> dict[bytes, object]:
        asked.append(len(keys))
        return accounts_info(state, keys)

    copy = ClientAccounts(CLIENTS, fetch, governance=True)  # type: ignore[arg-type]
    for _ in range(3):
        copy.after_round(_result(CLIENTS[:1]), (), EconomyInfo(0, 0, ()))
    assert asked == [len(CLIENTS)] * 3


def test_reading_every_account_asks_in_chunks_the_validators_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_accounts, "CHUNK", 5)
    state = _state()
    asked: list[int] = []

    def fetch(keys: list[bytes]) -> dict[bytes, object]:
        assert len(keys) <= 5, "more keys than one query takes"
        asked.append(len(keys))
        return accounts_info(state, keys)

    copy = ClientAccounts(CLIENTS, fetch)  # type: ignore[arg-type]
    everyone = copy.read_all()
    assert asked == [5, 5, 2] and set(everyone) == set(CLIENTS)
    assert everyone[CLIENTS[3]].balance == 100
