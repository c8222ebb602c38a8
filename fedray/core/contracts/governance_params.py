"""Which chain parameters governance may change, and how a proposed value is parsed and guarded.

Owns: the whitelist, the parsing of a proposed value (always text in the transaction) into the
field's type, the range guards that keep a change from halting or locking the chain, and the
governance error types. `apply_param_change` runs twice: when the proposal is submitted (a bad key
or value rejects the transaction) and again when it executes (a value that no longer fits the
parameters then in force makes the execution fail instead of the block).

Values the core cannot judge (is `fl_rule` a known aggregation strategy, is `fl_rule_config` a valid
config for it?) go to an optional checker the node injects as `BlockEnv.precompiles["param_check"]`:
a callable `(key, params_after_change) -> None` raising `FedrayError`. It sees the whole parameter
set, so a rule and its config are checked as a pair. Without it (pure core tests) only the checks
here apply.

Guards: periods and deadlines fit 32 bits (height + period never overflows uint64); basis points are
at most 10000; thresholds stay below 10000 and vetoes/quorums above 0 (either extreme would lock
governance for good); per-round and per-block mints are at most 2**40 so minting cannot overflow.

The privacy parameters (`dp_*`) are governed: a federation may tighten or loosen its budget,
clip norm and noise by vote; a change of the noise multiplier comes with the epsilon table the
accountant gives for it (the proposer computes it; the core only checks its form).

Deliberately ignored: parameters outside the whitelist (block limits, gas, flag detectors), which
change only with a new genesis or software.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

from fedray.core.contracts.privacy import MODES, parse_table
from fedray.core.encoding import UINT64_MAX
from fedray.core.state import Params
from fedray.errors import FedrayError, TxError

PARAM_CHECK = "param_check"
ParamCheck = Callable[[str, Params], None]

BPS = 10_000
MAX_PERIOD = 2**32 - 1  # blocks
MAX_MINT = 2**40  # tokens per round or per block
MAX_TIMEOUT_MS = 30 * 24 * 3600 * 1000  # a round waits at most 30 days of block time


class GovernanceError(TxError):
    """A governance transaction breaks a governance rule."""

    code = "governance"


class UnknownProposalKindError(GovernanceError):
    """The proposal kind is not one of param_change, admit, ban, model_release."""

    code = "unknown_proposal_kind"


class UnknownParamError(GovernanceError):
    """A param_change names a parameter outside the whitelist."""

    code = "unknown_param"


class BadParamValueError(GovernanceError):
    """A param_change value does not parse as the parameter's type or breaks its guard."""

    code = "bad_param_value"


# (lowest, highest) allowed value of each whitelisted integer parameter.
INT_GUARDS: dict[str, tuple[int, int]] = {
    "fl_clients_per_round": (1, UINT64_MAX),
    "fl_local_epochs": (1, UINT64_MAX),
    "fl_round_deadline": (2, MAX_PERIOD),
    "fl_round_timeout_ms": (0, MAX_TIMEOUT_MS),
    "reward_pool": (0, MAX_MINT),
    "block_reward": (0, MAX_MINT),
    "freeride_penalty_bps": (0, BPS),
    "min_stake_client": (1, UINT64_MAX),
    "min_stake_validator": (1, UINT64_MAX),
    "gov_min_deposit": (1, UINT64_MAX),
    "gov_deposit_period": (1, MAX_PERIOD),
    "gov_voting_period": (1, MAX_PERIOD),
    "gov_expedited_voting_period": (1, MAX_PERIOD),
    "gov_timelock": (0, MAX_PERIOD),
    "gov_quorum_bps": (1, BPS),
    "gov_threshold_bps": (1, BPS - 1),
    "gov_veto_bps": (1, BPS),
    "gov_expedited_threshold_bps": (1, BPS - 1),
    "dp_clip_norm_fp": (0, 2**40),
    "dp_noise_milli": (0, 10**9),
    "dp_epsilon_micro": (0, UINT64_MAX),
    **{
        f.name: (0, BPS)
        for f in dataclasses.fields(Params)
        if f.name.startswith("slash_") and f.name.endswith("_bps")
    },
}

_UINT = re.compile(r"0|[1-9][0-9]{0,19}")
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,8})(\.[0-9]{1,12})?")
_RULE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _check_rule(value: str) -> None:
    if not _RULE_NAME.fullmatch(value):  # rule: a strategy name is a short identifier
        raise BadParamValueError(f"fl_rule {value!r} is not a strategy name ([a-z][a-z0-9_]*)")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _check_json_object(value: str) -> None:
    try:  # rule: a rule config is a JSON object with finite numbers
        parsed = json.loads(value, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadParamValueError(f"fl_rule_config is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise BadParamValueError("fl_rule_config must be a JSON object")


def _check_decimal(value: str) -> None:
    # rule: a learning rate is a positive plain decimal ("0.05"), no exponent or sign
    if not _DECIMAL.fullmatch(value) or not value.strip("0."):
        raise BadParamValueError(f"fl_learning_rate {value!r} is not a positive decimal")


def _check_dp_mode(value: str) -> None:
    if value not in MODES:  # rule: a privacy mode fedray knows
        raise BadParamValueError(f"dp_mode {value!r} is not one of {', '.join(MODES)}")


def _check_dp_delta(value: str) -> None:
    # rule: delta is a plain decimal in [0, 1)
    if not _DECIMAL.fullmatch(value) or not value.startswith("0"):
        raise BadParamValueError(f"dp_delta {value!r} is not a decimal in [0, 1)")


def _check_dp_table(value: str) -> None:
    try:  # rule: cumulative micro-epsilon, non-decreasing integers
        parse_table(value)
    except ValueError as exc:
        raise BadParamValueError(f"dp_epsilon_table: {exc}") from None


STR_GUARDS: dict[str, Callable[[str], None]] = {
    "dp_mode": _check_dp_mode,
    "dp_delta": _check_dp_delta,
    "dp_epsilon_table": _check_dp_table,
    "fl_rule": _check_rule,
    "fl_rule_config": _check_json_object,
    "fl_learning_rate": _check_decimal,
}

WHITELIST: frozenset[str] = frozenset(INT_GUARDS) | frozenset(STR_GUARDS)

# (keys, holds, what breaks): consistency rules between two parameters.
_PAIRS: tuple[tuple[tuple[str, str], Callable[[Params], bool], str], ...] = (
    (
        ("gov_threshold_bps", "gov_expedited_threshold_bps"),
        lambda p: p.gov_expedited_threshold_bps >= p.gov_threshold_bps,
        "the expedited threshold would be below the regular one",
    ),
    (
        ("gov_voting_period", "gov_expedited_voting_period"),
        lambda p: p.gov_expedited_voting_period <= p.gov_voting_period,
        "the expedited voting period would be longer than the regular one",
    ),
)


def parse_param(key: str, value: str) -> int | str:
    """The typed, guarded value of whitelisted parameter `key` from its text."""
    if key not in WHITELIST:  # rule: only whitelisted parameters change by vote
        raise UnknownParamError(f"parameter {key!r} cannot be changed by governance")
    if key in STR_GUARDS:
        STR_GUARDS[key](value)
        return value
    if not _UINT.fullmatch(value):  # rule: integers are plain decimal text
        raise BadParamValueError(f"{key} value {value!r} is not a non-negative decimal integer")
    number = int(value)
    low, high = INT_GUARDS[key]
    if not low <= number <= high:  # rule: the parameter's range guard
        raise BadParamValueError(f"{key}={number} is outside {low}..{high}")
    return number


def apply_param_change(params: Params, key: str, value: str, checker: ParamCheck | None) -> Params:
    """`params` with `key` set to `value`, or a `GovernanceError` saying why not."""
    changes: dict[str, Any] = {key: parse_param(key, value)}
    new = dataclasses.replace(params, **changes)
    for keys, holds, what in _PAIRS:
        if key in keys and not holds(new):  # rule: paired parameters stay consistent
            raise BadParamValueError(f"{key}={value}: {what}")
    if checker is not None:
        try:  # rule: the node's checker accepts the new parameters (strategy and config)
            checker(key, new)
        except BadParamValueError:
            raise
        except FedrayError as exc:
            raise BadParamValueError(f"{key}={value!r}: {exc}") from None
    return new
