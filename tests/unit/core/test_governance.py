"""Governance on a dev chain: the proposal lifecycle, the exact tally rules, executions, the supply
identity at every height, and random transaction sequences (valid and invalid)."""

from __future__ import annotations

import dataclasses
import random
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fedray.core  # noqa: F401
from fedray.core.context import BlockEnv, ExecContext
from fedray.core.contracts import economy
from fedray.core.contracts.accounts import Stake, Unstake
from fedray.core.contracts.governance import Deposit, Propose, Vote, outcome
from fedray.core.contracts.governance_params import (
    INT_GUARDS,
    WHITELIST,
    BadParamValueError,
    UnknownParamError,
    apply_param_change,
)
from fedray.core.contracts.governance_state import HOLDING, GovernanceState, Proposal
from fedray.core.crypto import PrivateKey, key_from_seed
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.journal import Journal
from fedray.core.state import Params, State
from fedray.core.transition import check_tx_stateless, execute_tx
from fedray.core.tx import SignedTx, make_tx
from fedray.errors import FedrayError

PARAMS = Params(
    gov_min_deposit=1_000, gov_deposit_period=4, gov_voting_period=3, gov_expedited_voting_period=2
)
GENESIS, VKEYS, AKEYS = dev_genesis("fedray-gov", n_accounts=4, params=PARAMS)
A, B, C, D = AKEYS
GENESIS_SUPPLY = sum(a.balance + a.stake for a in GENESIS.accounts)
NEWCOMER = key_from_seed(b"gov/newcomer")


class Gov:
    """A dev chain that tracks nonces and checks the supply identity after every block."""

    def __init__(self, params: Params = PARAMS, env: BlockEnv | None = None) -> None:
        genesis = dataclasses.replace(GENESIS, params=params)
        self.chain = DevChain(genesis, VKEYS, env or BlockEnv())
        self.nonces: dict[bytes, int] = {}

    def tx(self, key: PrivateKey, payload: Any) -> bytes:
        nonce = self.nonces.get(key.public_key, 0)
        self.nonces[key.public_key] = nonce + 1
        return make_tx(key, GENESIS.chain_id, nonce, payload).raw

    def block(self, *txs: bytes) -> State:
        self.chain.advance(list(txs))
        assert_books_balance(self.chain.state)
        return self.chain.state

    def until(self, height: int) -> State:
        while self.chain.state.height < height:
            self.block()
        return self.chain.state

    def votes(self, *options: str, proposal: int = 1) -> State:
        return self.block(
            *(self.tx(v, Vote(proposal, o)) for v, o in zip(VKEYS, options, strict=False))
        )

    def at(self, height: int) -> State:
        return self.chain.states[height]


def assert_books_balance(state: State) -> None:
    exists, books = economy.supply_identity(state, GENESIS_SUPPLY)
    assert exists == books
    gs: GovernanceState = state.section("governance")
    for p in gs.proposals.values():
        if p.status in HOLDING:  # votes and snapshot agree with the running tally
            assert sum(p.tally) == sum(p.snapshot[k] for k in p.votes)


def proposal(state: State, pid: int = 1) -> Proposal:
    return state.section("governance").proposals[pid]  # type: ignore[no-any-return]


def change(key: str, value: str, deposit: int = 1_000, expedited: bool = False) -> Propose:
    return Propose("param_change", deposit, expedited, param_key=key, param_value=value)


def balance(state: State, key: PrivateKey) -> int:
    acct = state.account(key.public_key)
    assert acct is not None
    return acct.balance


# --- lifecycle --------------------------------------------------------------------------------
def test_passed_param_change_applies_at_voting_end() -> None:
    g = Gov()
    g.block(g.tx(A, change("fl_local_epochs", "3")))  # h1: voting 1..4
    assert proposal(g.at(1)).status == "voting" and proposal(g.at(1)).voting_end == 4
    g.votes("yes", "yes", "no")  # h2
    g.until(4)
    p = proposal(g.at(4))
    assert (p.status, p.tally, p.execute_height) == ("executed", (20_000, 10_000, 0, 0), 4)
    assert g.at(3).params.fl_local_epochs == 1  # unchanged the block before ...
    assert g.at(4).params.fl_local_epochs == 3  # ... changed in the block that ends the vote
    assert balance(g.at(4), A) - balance(g.at(3), A) == 1_000  # deposit refunded
    assert p.snapshot == {} and p.votes == {}  # finished proposals keep only the tally


def test_timelock_delays_execution() -> None:
    g = Gov(dataclasses.replace(PARAMS, gov_timelock=2))
    g.block(g.tx(A, change("fl_round_deadline", "7")))
    g.votes("yes", "yes", "yes", "yes")
    g.until(6)
    assert proposal(g.at(4)).status == "passed" and proposal(g.at(4)).execute_height == 6
    assert proposal(g.at(5)).status == "passed"
    assert g.at(5).params.fl_round_deadline == 20
    assert g.at(6).params.fl_round_deadline == 7 and proposal(g.at(6)).status == "executed"


def test_deposit_period_then_voting_from_the_completing_deposit() -> None:
    g = Gov()
    g.block(g.tx(A, change("fl_clients_per_round", "5", deposit=400)))  # h1
    g.block(g.tx(B, Stake(700)))  # h2: B stakes before voting starts
    g.block(g.tx(B, Deposit(1, 600)))  # h3: the minimum is reached
    p = proposal(g.at(3))
    assert (p.status, p.voting_start, p.voting_end) == ("voting", 3, 6)
    assert p.deposits == {A.public_key: 400, B.public_key: 600}
    assert p.snapshot[B.public_key] == 700 and A.public_key not in p.snapshot
    assert economy.escrowed(g.at(3)) == 1_000


def test_expired_proposal_refunds_every_depositor() -> None:
    g = Gov()
    g.block(g.tx(A, change("fl_clients_per_round", "5", deposit=300)))  # deposit_end 5
    g.block(g.tx(B, Deposit(1, 200)))
    g.until(5)
    assert proposal(g.at(4)).status == "deposit" and proposal(g.at(5)).status == "expired"
    assert balance(g.at(5), A) - balance(g.at(4), A) == 300
    assert balance(g.at(5), B) - balance(g.at(4), B) == 200
    assert economy.escrowed(g.at(5)) == 0


def test_no_quorum_rejects_and_refunds() -> None:
    g = Gov()
    g.block(g.tx(A, change("fl_local_epochs", "3")))
    g.votes("yes")  # 10000 of 40000 power: 25% < 33.4%
    g.until(4)
    p = proposal(g.at(4))
    assert (p.status, p.result) == ("rejected", "no_quorum")
    assert g.at(4).params.fl_local_epochs == 1
    assert balance(g.at(4), A) - balance(g.at(3), A) == 1_000


def test_veto_burns_the_deposits() -> None:
    g = Gov()
    g.block(g.tx(A, change("fl_local_epochs", "3", deposit=600)))
    g.block(g.tx(B, Deposit(1, 400)))  # h2: voting 2..5
    g.votes("yes", "yes", "veto")  # veto 1/3 of votes cast: 33.33% < 33.4%, not a veto
    g.until(5)
    assert proposal(g.at(5)).status == "executed"
    g.block(g.tx(A, change("fl_local_epochs", "4", deposit=600)))  # h6: proposal 2
    g.block(g.tx(B, Deposit(2, 400)))  # h7: voting 7..10
    g.votes("yes", "yes", "veto", "veto", proposal=2)
    before = g.at(g.chain.state.height)
    g.until(10)
    p = proposal(g.at(10), 2)
    assert (p.status, p.result) == ("vetoed", "veto")
    burned = g.at(10).section("economy").burned - g.at(9).section("economy").burned
    assert burned == 1_000
    assert balance(g.at(10), A) == balance(before, A) and balance(g.at(10), B) == balance(before, B)
    assert g.at(10).params.fl_local_epochs == 3


def test_expedited_needs_two_thirds() -> None:
    g = Gov()
    g.block(g.tx(A, change("fl_local_epochs", "2", expedited=True)))  # voting 1..3
    g.votes("yes", "yes", "no")  # 66.67% of non-abstaining: enough for 50%, not 66.7%
    g.until(3)
    assert (proposal(g.at(3)).status, proposal(g.at(3)).result) == ("rejected", "threshold")
    g.block(g.tx(A, change("fl_local_epochs", "2", expedited=True)))  # h4: voting 4..6
    g.votes("yes", "yes", "yes", "no", proposal=2)
    g.until(6)
    assert proposal(g.at(6), 2).status == "executed" and g.at(6).params.fl_local_epochs == 2


def test_tally_boundaries_are_exact() -> None:
    def status(
        tally: tuple[int, int, int, int],
        total: int = 10_000,
        expedited: bool = False,
        params: Params = PARAMS,
    ) -> tuple[str, str]:
        p = Proposal(
            1,
            "ban",
            (),
            b"",
            expedited,
            1,
            5,
            MappingProxyType({}),
            "voting",
            snapshot=MappingProxyType({b"x": total}),
            tally=tally,
        )
        return outcome(p, params)

    assert status((3_340, 0, 0, 0))[0] == "passed"  # quorum: at least 33.4%
    assert status((3_339, 0, 0, 0)) == ("rejected", "no_quorum")
    assert status((0, 0, 10_000, 0)) == ("rejected", "threshold")  # all abstain
    assert status((5_000, 5_000, 0, 0)) == ("rejected", "threshold")  # strictly more than 50%
    assert status((5_001, 4_999, 0, 0))[0] == "passed"
    assert status((4_000, 0, 2_000, 2_000))[0] == "passed"  # abstain not in the threshold base
    assert status((6_660, 0, 0, 3_340)) == ("vetoed", "veto")  # veto: at least 33.4% of votes
    assert status((6_661, 0, 0, 3_339))[0] == "passed"
    assert status((6_670, 3_330, 0, 0), expedited=True) == ("rejected", "threshold")
    assert status((6_671, 3_329, 0, 0), expedited=True)[0] == "passed"
    assert status((0, 0, 0, 0), total=0) == ("rejected", "no_quorum")


# --- executions -------------------------------------------------------------------------------
def test_admit_ban_and_model_release_execute() -> None:
    g = Gov()
    model = bytes(range(32))
    g.block(
        g.tx(A, Propose("admit", 1_000, account=NEWCOMER.public_key, role="client")),
        g.tx(B, Propose("ban", 1_000, account=D.public_key)),
        g.tx(C, Propose("model_release", 1_000, model_hash=model, terms="CC-BY-4.0")),
        g.tx(A, Propose("admit", 1_000, account=C.public_key, role="validator")),
    )
    g.block(*(g.tx(v, Vote(pid, "yes")) for pid in (1, 2, 3, 4) for v in VKEYS))
    g.until(4)
    s = g.at(4)
    assert [proposal(s, i).status for i in (1, 2, 3, 4)] == ["executed"] * 4
    newcomer, banned, validator = (s.account(k.public_key) for k in (NEWCOMER, D, C))
    assert newcomer is not None and newcomer.is_client and newcomer.balance == 0
    assert banned is not None and banned.banned and banned.jailed
    assert validator is not None and validator.is_validator
    releases = s.section("governance").releases
    assert [(r.model_hash, r.terms, r.height, r.proposal_id) for r in releases] == [
        (model, "CC-BY-4.0", 4, 3)
    ]
    with pytest.raises(FedrayError) as err:  # a banned account can no longer act
        g.block(g.tx(D, Stake(1)))
    assert err.value.code == "jailed"


def test_execution_that_would_empty_the_validator_set_fails() -> None:
    g = Gov()
    g.block(g.tx(A, change("min_stake_validator", "20000")))  # above every validator's stake
    g.votes("yes", "yes", "yes")
    g.until(4)
    p = proposal(g.at(4))
    assert (p.status, p.result) == ("failed", "governance")
    assert g.at(4).params.min_stake_validator == 1_000 and len(g.at(4).validators) == 4


def test_execution_rechecks_against_the_parameters_then_in_force() -> None:
    g = Gov()
    g.block(
        g.tx(A, change("gov_expedited_voting_period", "3")),  # fine alone (voting is 3)
        g.tx(B, change("gov_voting_period", "2")),
    )  # fine alone (expedited is 2)
    g.block(*(g.tx(v, Vote(pid, "yes")) for pid in (1, 2) for v in VKEYS))
    g.until(4)
    assert proposal(g.at(4), 1).status == "executed"
    assert (proposal(g.at(4), 2).status, proposal(g.at(4), 2).result) == (
        "failed",
        "bad_param_value",
    )
    assert (g.at(4).params.gov_voting_period, g.at(4).params.gov_expedited_voting_period) == (3, 3)


def test_injected_checker_judges_rule_and_config() -> None:
    calls: list[tuple[str, str, str]] = []
    verdict = {"ok": True}

    def checker(key: str, params: Params) -> None:
        calls.append((key, params.fl_rule, params.fl_rule_config))
        if params.fl_rule == "bogus" or not verdict["ok"]:
            raise FedrayError("no such rule")

    g = Gov(env=BlockEnv(precompiles={"param_check": checker}))
    block = g.chain.propose([g.tx(A, change("fl_rule", "bogus"))], strict=False)
    assert list(block.txs) == []  # refused at submission
    g.nonces[A.public_key] = 0
    g.block(g.tx(A, change("fl_rule", "median")))
    g.votes("yes", "yes", "yes")
    verdict["ok"] = False  # the checker now refuses: the execution fails, the chain goes on
    g.until(4)
    assert (proposal(g.at(4)).status, proposal(g.at(4)).result) == ("failed", "bad_param_value")
    assert g.at(4).params.fl_rule == "fedavg"
    assert ("fl_rule", "median", "{}") in calls


# --- parameter guards -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("max_block_txs", "10", UnknownParamError),
        ("fl_round_deadline", "1", BadParamValueError),
        ("fl_round_deadline", str(2**32), BadParamValueError),
        ("fl_local_epochs", "01", BadParamValueError),
        ("fl_local_epochs", "+3", BadParamValueError),
        ("gov_quorum_bps", "0", BadParamValueError),
        ("gov_threshold_bps", "10000", BadParamValueError),
        ("gov_veto_bps", "0", BadParamValueError),
        ("slash_double_sign_bps", "10001", BadParamValueError),
        ("reward_pool", str(2**40 + 1), BadParamValueError),
        ("fl_learning_rate", "0.0", BadParamValueError),
        ("fl_learning_rate", "1e-3", BadParamValueError),
        ("fl_rule", "Krum!", BadParamValueError),
        ("fl_rule_config", '{"beta": NaN}', BadParamValueError),
        ("fl_rule_config", "{", BadParamValueError),
        ("gov_threshold_bps", "7000", BadParamValueError),  # above the expedited 6670
    ],
)
def test_bad_changes_are_refused(key: str, value: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        apply_param_change(Params(), key, value, None)


def test_good_changes_parse_to_the_field_type() -> None:
    p = apply_param_change(Params(), "fl_learning_rate", "0.125", None)
    assert p.fl_learning_rate == "0.125"
    assert apply_param_change(Params(), "slash_copy_bps", "10000", None).slash_copy_bps == 10_000
    cfg = apply_param_change(Params(), "fl_rule_config", '{"beta": 0.1}', None)
    assert cfg.fl_rule_config == '{"beta": 0.1}'


def test_every_gov_and_slash_parameter_is_whitelisted_and_guarded() -> None:
    names = {f.name for f in dataclasses.fields(Params)}
    wanted = {
        n for n in names if n.startswith("gov_") or (n.startswith("slash_") and n.endswith("_bps"))
    }
    assert wanted <= WHITELIST and names >= WHITELIST
    for key, (low, high) in INT_GUARDS.items():
        assert isinstance(getattr(Params(), key), int) and low <= getattr(Params(), key) <= high


# --- random sequences -------------------------------------------------------------------------
def random_gov_txs(rng: random.Random, g: Gov, count: int) -> list[bytes]:
    """Valid and invalid governance (and stake) transactions; votes mostly by validators on the
    latest proposals, so that some proposals pass, fail, get vetoed or miss the quorum."""
    n_proposals = g.chain.state.section("governance").next_id - 1
    txs = []
    for _ in range(count):
        key = rng.choice(AKEYS + VKEYS)
        pid = max(1, n_proposals - rng.choice([0, 0, 0, 1, 2]) + rng.choice([0, 0, 0, 0, 1]))
        roll = rng.random()
        if roll < 0.1:
            value = rng.choice(["2", "3", "0", "x", "99999999999999999999999"])
            payload: Any = change(
                rng.choice(
                    ["fl_local_epochs", "gov_voting_period", "max_block_txs", "gov_timelock"]
                ),
                value,
                rng.choice([300, 1_000, 10**7]),
                rng.random() < 0.3,
            )
        elif roll < 0.15:
            payload = Propose("ban", rng.choice([500, 1_000]), account=rng.choice(AKEYS).public_key)
        elif roll < 0.3:
            payload = Deposit(pid, rng.choice([100, 700, 10**7]))
        elif roll < 0.9:
            key = rng.choice(VKEYS + VKEYS + AKEYS)
            payload = Vote(pid, rng.choice(["yes", "yes", "yes", "no", "abstain", "veto"]))
        else:
            payload = rng.choice([Stake(500), Unstake(300)])
        nonce = g.nonces.get(key.public_key, 0) + rng.choice([0, 0, 0, 0, 0, 1])
        txs.append(make_tx(key, GENESIS.chain_id, nonce, payload).raw)
    return txs


def make_sender(raw: bytes) -> bytes:
    return SignedTx.decode(raw).tx.sender


def apply_checked(g: Gov, txs: list[bytes]) -> list[bytes]:
    """Like `select_txs`, asserting that every rejected transaction leaves the state unchanged."""
    s = g.chain.state
    height = s.height + 1
    ctx = ExecContext(
        height, s.last_block_time + 1000, s.validators.keys[height % len(s.validators)], g.chain.env
    )
    journal = Journal(s)
    kept = []
    for raw in txs:
        before = journal.finish().root()
        try:
            execute_tx(journal, check_tx_stateless(raw, s.chain_id, s.params.max_tx_bytes), ctx)
        except FedrayError:
            assert journal.finish().root() == before
            continue
        kept.append(raw)
        sender = make_sender(raw)
        g.nonces[sender] = g.nonces.get(sender, 0) + 1
    return kept


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32))
def test_random_governance_sequences_keep_the_books(seed: int) -> None:
    rng = random.Random(seed)
    g = Gov(
        dataclasses.replace(
            PARAMS,
            gov_deposit_period=3,
            gov_voting_period=2,
            gov_expedited_voting_period=1,
            gov_timelock=rng.choice([0, 1]),
        )
    )
    for _ in range(8):
        g.block(*apply_checked(g, random_gov_txs(rng, g, 10)))
    statuses = {p.status for p in g.chain.state.section("governance").proposals.values()}
    assert statuses <= {
        "deposit",
        "voting",
        "passed",
        "expired",
        "rejected",
        "vetoed",
        "executed",
        "failed",
    }
