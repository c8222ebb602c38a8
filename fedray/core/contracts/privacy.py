"""The privacy budget on chain: who may still take part, what each participation cost, and the
verifiable bound on an update's norm under differential privacy.

Parameters (`Params.dp_*`, under governance): the mode, the clip norm C (2**-16 units), the noise
multiplier z (thousandths), the target epsilon (millionths), delta (text) and the epsilon table:
a client's cumulative micro-epsilon after 1, 2, ... participations, computed off chain by the
accountant (`fedray.learning.accounting.epsilon_table`) and recorded at genesis or by governance.
The core only counts and looks up integers: no Renyi divergence, no float.

- Selection (`within_budget`): a client whose next participation would take it past the target
  (or past the table) is not eligible. When no client is, the federation's budget is spent:
  `PrivacyLedger.exhausted` says so and no round opens.
- Charging (`charge_round`): when a round closes (and the chain has an epsilon table, with or
  without a budget), every selected client that did not declare a skip is charged one participation (conservative: it may have released its update), at the
  table's increment for its next participation; the round's largest spent epsilon is recorded.
  After a governance change of z (and the table), increments come from the new table: exact while
  z is constant, an approximation across a change (docs/privacy.md).
- The norm bound (`norm_bound`): what validators can verify of a noisy update. An honest update
  is the clipped delta (norm <= C) plus Gaussian noise of std sigma per coordinate, whose norm
  exceeds sigma (sqrt(P) + 10) with probability below e^-50 (Gaussian concentration), plus the
  fixed-point rounding (half a unit per coordinate). Anything longer was not produced by the
  mechanism and is refused by the aggregation precompile and slashed (`FLAG_OVER_NORM`).
  The noise itself cannot be checked.
- The noise-level flag (`noise_z_bps`): DP noise shrinks every honest update's correlation with
  the others by the signal fraction C^2 / (C^2 + P sigma^2); the threshold of the "uncorrelated"
  evidence shrinks by the same factor, so honest noisy updates are not taken for random vectors.

Deliberately ignored: record-level DP, and secure aggregation (docs/privacy.md says why).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from fedray.core.journal import Journal
from fedray.core.sections import SectionSpec, register_section
from fedray.core.state import Params

NOISE_TAIL = 10
"""Standard deviations of slack on the noise norm: an honest client exceeds it w.p. < e^-50."""
MODES = ("none", "local", "distributed")
MAX_TABLE = 1000
_TABLE = re.compile(r"(0|[1-9][0-9]{0,18})(,(0|[1-9][0-9]{0,18})){0,999}")
_EMPTY: MappingProxyType[bytes, int] = MappingProxyType({})


@dataclass(frozen=True)
class PrivacyLedger:
    """The `privacy` section: each client's participations and spent micro-epsilon, the largest
    spent epsilon after each closed round (round, micro-epsilon), and whether the federation's
    budget is spent (no client can take part any more)."""

    participations: MappingProxyType[bytes, int] = field(default_factory=lambda: _EMPTY)
    spent: MappingProxyType[bytes, int] = field(default_factory=lambda: _EMPTY)
    rounds: tuple[tuple[int, int], ...] = ()
    exhausted: bool = False


PRIVACY = register_section(SectionSpec("privacy", PrivacyLedger, PrivacyLedger))


def parse_table(text: str) -> tuple[int, ...]:
    """The epsilon table's integers ("" is the empty table); `ValueError` if malformed."""
    if not text:
        return ()
    if not _TABLE.fullmatch(text):
        raise ValueError("the epsilon table is comma-separated non-negative integers")
    table = tuple(int(v) for v in text.split(","))
    if any(b < a for a, b in zip(table, table[1:], strict=False)):
        raise ValueError("the epsilon table must not decrease")
    return table


def budget_enforced(params: Params) -> bool:
    return params.dp_epsilon_micro > 0


def _table(params: Params) -> tuple[int, ...]:
    return _parsed_table(params.dp_epsilon_table)


@functools.lru_cache(maxsize=8)
def _parsed_table(text: str) -> tuple[int, ...]:
    """Parsed once per table text: eligibility asks it for every registered client."""
    try:
        return parse_table(text)
    except ValueError:  # guarded at genesis and by governance: treat as an empty table
        return ()


def within_budget(ledger: PrivacyLedger, params: Params, key: bytes) -> bool:
    """Whether `key`'s next participation stays within the target epsilon."""
    if not budget_enforced(params):
        return True
    table = _table(params)
    r = ledger.participations.get(key, 0)
    return r < len(table) and table[r] <= params.dp_epsilon_micro


def ledger_of(journal: Journal) -> PrivacyLedger:
    return journal.section("privacy")  # type: ignore[no-any-return]


def mark_exhausted(journal: Journal, exhausted: bool) -> None:
    ledger = ledger_of(journal)
    if ledger.exhausted != exhausted:
        journal.set_section("privacy", replace(ledger, exhausted=exhausted))


def charge_round(
    journal: Journal, round_: int, selected: tuple[bytes, ...], skipped: tuple[bytes, ...]
) -> None:
    """Charge every selected client that did not skip one participation (see the docstring)."""
    params = journal.params
    table = _table(params)
    if not table:  # no DP accounting (with a table and no budget, spending is still recorded)
        return
    ledger = ledger_of(journal)
    participations, spent = dict(ledger.participations), dict(ledger.spent)
    for key in selected:
        if key in skipped:
            continue
        r = participations.get(key, 0)
        before = table[r - 1] if 0 < r <= len(table) else (table[-1] if r else 0)
        after = table[r] if r < len(table) else table[-1]
        participations[key] = r + 1
        spent[key] = spent.get(key, 0) + max(0, after - before)
    top = max(spent.values(), default=0)
    journal.set_section(
        "privacy",
        replace(
            ledger,
            participations=MappingProxyType(dict(sorted(participations.items()))),
            spent=MappingProxyType(dict(sorted(spent.items()))),
            rounds=ledger.rounds + ((round_, top),),
        ),
    )


def noise_std_fp(params: Params, participants: int) -> int:
    """Each update's noise std in 2**-16 units, rounded up (0 without DP)."""
    if params.dp_mode not in ("local", "distributed") or params.dp_clip_norm_fp <= 0:
        return 0
    numerator = params.dp_noise_milli * params.dp_clip_norm_fp
    denominator = 1000
    if params.dp_mode == "distributed":  # floor of sqrt(k): the bound errs on the long side
        denominator *= max(1, math.isqrt(max(1, participants)))
    return -(-numerator // denominator)


def norm_bound(params: Params, model_nbytes: int, participants: int) -> int:
    """The longest update an honest client produces, in 2**-16 units (0: no bound)."""
    if params.dp_mode not in ("local", "distributed") or params.dp_clip_norm_fp <= 0:
        return 0
    root = math.isqrt(model_nbytes // 4) + 1  # > sqrt(P): P int32 coordinates
    sigma = noise_std_fp(params, participants)
    return params.dp_clip_norm_fp + sigma * (root + NOISE_TAIL) + root


def noise_z_bps(params: Params, model_nbytes: int, participants: int) -> int:
    """The noise-level flag's z, scaled by the signal fraction C^2 / (C^2 + P sigma^2)."""
    sigma = noise_std_fp(params, participants)
    if sigma == 0:
        return params.flag_noise_z_bps
    c2 = params.dp_clip_norm_fp**2
    return params.flag_noise_z_bps * c2 // (c2 + (model_nbytes // 4) * sigma * sigma)
