"""The privacy budget on chain and the DP norm check: selection skips clients past their budget,
each participation is charged from the table, governance changes the parameters, and an update
longer than the norm bound is refused and slashed while honest noisy updates are not."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fedray.config import load_config
from fedray.core.contracts.governance_params import BadParamValueError, apply_param_change
from fedray.core.contracts.privacy import (
    PrivacyLedger,
    noise_z_bps,
    norm_bound,
    within_budget,
)
from fedray.core.contracts.rounds import Skip, genesis_rounds
from fedray.core.crypto import key_from_seed
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.precompiles import FLAG_OVER_NORM, FLAG_UNCORRELATED
from fedray.core.state import GenesisAccount, Params
from fedray.core.tx import make_tx
from fedray.federation.inprocess import InProcessFederation
from fedray.node.tables import accounts_table

CLIENTS = [key_from_seed(f"privacy/client/{i}".encode()) for i in range(3)]
BUDGET = Params(
    fl_clients_per_round=2,
    fl_round_deadline=2,
    fl_round_timeout_ms=0,
    dp_mode="local",
    dp_clip_norm_fp=65536,
    dp_noise_milli=2000,
    dp_epsilon_micro=2_500_000,
    dp_delta="0.00001",
    dp_epsilon_table="1000000,2000000,3000000",
)


def chain(params: Params = BUDGET) -> DevChain:
    genesis, vkeys, _ = dev_genesis("privacy", n_accounts=0)
    accounts = genesis.accounts + tuple(
        GenesisAccount(k.public_key, balance=10**6, stake=100, is_client=True) for k in CLIENTS
    )
    genesis = dataclasses.replace(
        genesis,
        accounts=accounts,
        params=params,
        sections={"rounds": genesis_rounds(b"\x07" * 32, 1024)},
    )
    dev = DevChain(genesis, vkeys)
    dev.advance()  # block 1 opens round 0
    return dev


def ledger(dev: DevChain) -> PrivacyLedger:
    value: PrivacyLedger = dev.state.section("privacy")
    return value


def test_clients_are_charged_per_participation_and_not_selected_past_their_budget() -> None:
    dev = chain()
    for _ in range(30):  # rounds close on their deadline (nobody answers): each one is charged
        dev.advance()
    rs = dev.state.section("rounds")
    book = ledger(dev)
    # 3 clients x 2 participations within 2.5 epsilon each, up to 2 per round, then no more
    assert 3 <= rs.round <= 4 and not rs.open and book.exhausted
    assert all(book.participations[k.public_key] == 2 for k in CLIENTS)
    assert all(book.spent[k.public_key] == 2_000_000 for k in CLIENTS)
    assert [r for r, _ in book.rounds] == list(range(rs.round))
    assert book.rounds[0][1] == 1_000_000 and book.rounds[-1][1] == 2_000_000
    table = accounts_table(dev.state, {k.public_key: f"client-{i}" for i, k in enumerate(CLIENTS)})
    assert "eps left" in table and "no client can take part any more" in table
    for i in range(3):  # spent 2.0 of 2.5 in 2 rounds
        line = next(x for x in table.splitlines() if x.startswith(f"client-{i}"))
        assert line.split()[-3:] == ["2.000", "0.500", "2"]


def test_a_client_that_skips_is_not_charged() -> None:
    dev = chain()
    selected = dev.state.section("rounds").selected
    skipper = next(k for k in CLIENTS if k.public_key in selected)
    dev.advance([make_tx(skipper, "privacy", 0, Skip(0)).raw])
    while dev.state.section("rounds").round == 0:  # round 0 closes on its deadline
        dev.advance()
    book = ledger(dev)
    assert book.participations.get(skipper.public_key, 0) == 0
    assert sum(book.participations.values()) == len(selected) - 1


def test_without_a_budget_spending_is_recorded_and_nobody_is_left_out() -> None:
    dev = chain(dataclasses.replace(BUDGET, dp_epsilon_micro=0, dp_epsilon_table="1,2,3,4,5,6"))
    for _ in range(30):
        dev.advance()
    rounds = dev.state.section("rounds").round
    assert rounds > 3 and not ledger(dev).exhausted  # past where a budget of 2.5 would stop it
    assert sum(ledger(dev).participations.values()) == 2 * rounds
    untracked = chain(dataclasses.replace(BUDGET, dp_epsilon_micro=0, dp_epsilon_table=""))
    for _ in range(10):
        untracked.advance()
    assert ledger(untracked).participations == {}


def test_governance_changes_the_budget_and_guards_the_privacy_parameters() -> None:
    book = PrivacyLedger(participations={CLIENTS[0].public_key: 2})
    assert not within_budget(book, BUDGET, CLIENTS[0].public_key)
    raised = apply_param_change(BUDGET, "dp_epsilon_micro", "3000000", None)
    assert within_budget(book, raised, CLIENTS[0].public_key)
    assert apply_param_change(BUDGET, "dp_mode", "distributed", None).dp_mode == "distributed"
    table = apply_param_change(BUDGET, "dp_epsilon_table", "5,6,7", None)
    assert table.dp_epsilon_table == "5,6,7"
    for key, value in (
        ("dp_epsilon_table", "3,2"),
        ("dp_epsilon_table", "1,,2"),
        ("dp_mode", "central"),
        ("dp_delta", "1.5"),
        ("dp_noise_milli", "-1"),
    ):
        with pytest.raises(BadParamValueError):
            apply_param_change(BUDGET, key, value, None)


def test_the_norm_bound_and_the_noise_threshold_move_with_the_noise() -> None:
    nbytes = 4 * 10_000  # P = 10,000 coordinates
    local = norm_bound(BUDGET, nbytes, 9)
    # C + z C (sqrt(P) + 10) + slack, in 2**-16 units: 1 + 2 * (101 + 10) + ~0.0015
    assert local / 65536 == pytest.approx(1 + 2 * 111, rel=1e-3)
    shared = norm_bound(dataclasses.replace(BUDGET, dp_mode="distributed"), nbytes, 9)
    assert shared / 65536 == pytest.approx(1 + 2 / 3 * 111, rel=1e-3)
    assert norm_bound(dataclasses.replace(BUDGET, dp_mode="none"), nbytes, 9) == 0
    plain = Params()
    assert noise_z_bps(plain, nbytes, 9) == plain.flag_noise_z_bps
    # signal fraction 1 / (1 + P z^2) = 1 / 40001
    assert noise_z_bps(BUDGET, nbytes, 9) == plain.flag_noise_z_bps // 40_001


def run(tmp_path: Path, overrides: list[str], rounds: int = 2) -> InProcessFederation:
    cfg = load_config(None, ["clients=6", f"rounds={rounds}", "baseline=false", *overrides])
    net = InProcessFederation(tmp_path, cfg, validators=1)
    net.block()
    for _ in range(rounds):
        net.run_round()
    return net


def test_an_update_past_the_norm_bound_is_refused_and_slashed_honest_noise_is_not(
    tmp_path: Path,
) -> None:
    # the attack: a client scales its update far past what clipping and the noise can produce
    net = run(
        tmp_path,
        [
            "privacy=distributed",
            "privacy.noise_multiplier=1.0",
            "attack=scaling",
            "attack.fraction=0.2",
            "attack.params.boost=1000.0",
        ],
    )
    attackers = {net.fed.client_key(i).public_key for i in net.fed.attackers()}
    assert attackers
    results = net.state.section("rounds").results
    penalties = list(net.state.section("penalties").values())
    for result in results:
        for update, verdict in zip(result.updates, result.verdicts, strict=True):
            over = bool(verdict.flags & FLAG_OVER_NORM)
            assert over == (update.client in attackers)
            assert not (verdict.flags & FLAG_UNCORRELATED)  # honest DP noise is not "noise"
            if over:
                assert verdict.weight == 0 and verdict.rejected
    slashed = {p.offender for p in penalties if p.kind == "update_norm"}
    assert slashed == attackers
    assert all(p.offender in attackers for p in penalties)  # no honest client penalized
