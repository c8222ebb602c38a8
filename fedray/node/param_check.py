"""The node's check of governance parameter changes the core cannot judge on its own.

Registered as `BlockEnv.precompiles["param_check"]` (see `fedray.core.contracts.governance_params`):
`check_param(key, params_after_change)` raises `BadParamValueError` when the aggregation rule and its
JSON config, taken together, do not build a strategy config, so a vote cannot switch the chain to a
rule that would fail when the next round closes. It runs when a proposal is submitted and again when
it executes, on every validator, and depends on nothing but its arguments.

Deliberately ignored: every other parameter (the core's guards cover them) and whether a rule is a
good idea for the federation (that is what the vote is for).
"""

from __future__ import annotations

import json

from fedray.aggregation.registry import make_config
from fedray.core.contracts.governance_params import BadParamValueError
from fedray.core.state import Params
from fedray.errors import FedrayError

RULE_KEYS = frozenset({"fl_rule", "fl_rule_config"})


def check_param(key: str, params: Params) -> None:
    """Raise `BadParamValueError` unless `params.fl_rule` accepts `params.fl_rule_config`."""
    if key not in RULE_KEYS:
        return
    try:
        make_config(params.fl_rule, json.loads(params.fl_rule_config))
    except (FedrayError, ValueError, TypeError, RecursionError) as exc:
        raise BadParamValueError(
            f"aggregation rule {params.fl_rule!r} rejects config {params.fl_rule_config}: {exc}"
        ) from None
