"""The node's governance parameter checker: an aggregation rule and its config are judged together,
at submission and again at execution, through `BlockEnv.precompiles["param_check"]`."""

from __future__ import annotations

import dataclasses

import pytest

import fedray.core  # noqa: F401
from fedray.core.context import BlockEnv
from fedray.core.contracts.governance import Propose, Vote
from fedray.core.contracts.governance_params import (
    PARAM_CHECK,
    BadParamValueError,
    apply_param_change,
)
from fedray.core.devchain import DevChain, dev_genesis
from fedray.core.state import Params
from fedray.core.tx import make_tx
from fedray.node.param_check import check_param


@pytest.mark.parametrize(
    ("rule", "config"),
    [
        ("fedavg", "{}"),
        ("trimmed_mean", '{"beta": 0.2}'),
        ("krum", '{"f": 2}'),
        ("bucketing", '{"inner": "median"}'),
    ],
)
def test_valid_rule_and_config_pass(rule: str, config: str) -> None:
    check_param("fl_rule", dataclasses.replace(Params(), fl_rule=rule, fl_rule_config=config))


@pytest.mark.parametrize(
    ("key", "value", "base"),
    [
        ("fl_rule", "no_such_rule", "{}"),
        ("fl_rule", "krum", '{"beta": 0.1}'),  # the current config does not fit the new rule
        ("fl_rule_config", '{"beta": 0.7}', "{}"),  # out of range for trimmed_mean
        ("fl_rule_config", '{"beta": "x"}', "{}"),
        ("fl_rule_config", '{"momentum": 1}', "{}"),
    ],
)
def test_bad_rule_or_config_is_refused(key: str, value: str, base: str) -> None:
    params = dataclasses.replace(Params(), fl_rule="trimmed_mean", fl_rule_config=base)
    with pytest.raises(BadParamValueError):
        apply_param_change(params, key, value, check_param)


def test_other_keys_are_not_judged() -> None:
    check_param("fl_local_epochs", dataclasses.replace(Params(), fl_rule="no_such_rule"))


def test_chain_refuses_unknown_rule_and_executes_a_known_one() -> None:
    params = Params(gov_min_deposit=1_000, gov_voting_period=2)
    genesis, vkeys, akeys = dev_genesis("fedray-param-check", n_accounts=1, params=params)
    chain = DevChain(genesis, vkeys, BlockEnv(precompiles={PARAM_CHECK: check_param}))
    bad = Propose("param_change", 1_000, param_key="fl_rule", param_value="krumm")
    assert list(chain.propose([make_tx(akeys[0], genesis.chain_id, 0, bad).raw], False).txs) == []
    good = Propose("param_change", 1_000, param_key="fl_rule", param_value="median")
    chain.advance([make_tx(akeys[0], genesis.chain_id, 0, good).raw])
    chain.advance([make_tx(v, genesis.chain_id, 0, Vote(1, "yes")).raw for v in vkeys])
    chain.advance()
    assert chain.state.params.fl_rule == "median"
