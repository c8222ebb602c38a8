"""summary.json's privacy block: the largest epsilon any client spent, against the chain's target."""

from __future__ import annotations

import dataclasses

from fedray.federation.outputs import privacy_summary
from fedray.node.views import AccountInfo, RoundInfo

INFO = RoundInfo(9, 3, False, 0, 0, b"g", (), 0, 1, "0.1", "fedavg", ())


def test_epsilon_spent_is_the_largest_over_clients_and_the_target_the_chains() -> None:
    info = dataclasses.replace(
        INFO, privacy=("local", 32768, 2500), privacy_budget=(8_000_000, "0.00001")
    )
    accounts = {b"a": AccountInfo(dp_spent_micro=7_250_000), b"b": AccountInfo(dp_spent_micro=3)}
    s = privacy_summary(info, accounts, budget_spent_after=4)
    assert (s["mode"], s["epsilon_spent"], s["epsilon_target"]) == ("local", 7.25, 8.0)
    assert (s["clip_norm"], s["noise_multiplier"], s["delta"]) == (0.5, 2.5, 1e-5)
    assert s["budget_spent_after_round"] == 4


def test_without_dp_nothing_is_claimed() -> None:
    s = privacy_summary(INFO, {b"a": AccountInfo()}, None)
    assert s == {"mode": "none", "epsilon_spent": None, "epsilon_target": None}
