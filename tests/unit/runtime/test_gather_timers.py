"""`gather.Timers`: round 0's propose timeout is `round_gather_s` longer exactly when the committed
state's open round still misses updates; every other timeout fires as scheduled."""

from __future__ import annotations

import pytest

from fedray.consensus.messages import ScheduleTimeout
from fedray.consensus.signer import STEP_PRECOMMIT, STEP_PREVOTE, STEP_PROPOSE
from fedray.runtime.gather import Timers


def delay(awaiting: bool, round_: int, step: int, gather_s: float = 2.0) -> float:
    timers = Timers(gather_s, lambda: awaiting, lambda fired: None)
    return timers.delay_s(ScheduleTimeout(5, round_, step, 1000))


def test_round_zero_propose_allows_for_the_gather() -> None:
    assert delay(True, 0, STEP_PROPOSE) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("awaiting", "round_", "step", "gather_s"),
    [
        (False, 0, STEP_PROPOSE, 2.0),  # no round waiting for updates
        (True, 1, STEP_PROPOSE, 2.0),  # later rounds: the proposer does not gather
        (True, 0, STEP_PREVOTE, 2.0),
        (True, 0, STEP_PRECOMMIT, 2.0),
        (True, 0, STEP_PROPOSE, 0.0),  # gathering off
    ],
)
def test_every_other_timeout_fires_as_scheduled(
    awaiting: bool, round_: int, step: int, gather_s: float
) -> None:
    assert delay(awaiting, round_, step, gather_s) == pytest.approx(1.0)
