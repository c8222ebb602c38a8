"""Learning evidence on the in-process federation: contribution flags, contributions, rewards, k-of-w
slashing, free riding, copies and replays; and the exact integer tests behind the flags."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fedray.aggregation.base import ClientDelta
from fedray.config import load_config
from fedray.core.contracts.economy import account_total, supply_identity
from fedray.core.precompiles import (
    EVIDENCE,
    FLAG_COS_LOW,
    FLAG_NEAR_COPY,
    FLAG_NORM,
    FLAG_OPPOSED,
    FLAG_UNCORRELATED,
    FLAG_ZERO,
    FREE_RIDING,
    WITHHOLD,
    FlagParams,
)
from fedray.federation.inprocess import InProcessFederation
from fedray.node.scoring import agreement, at_noise_level, cos_above, cos_below, score_updates


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**24), st.integers(-10_000, 10_000))
def test_exact_cosine_tests_match_real_arithmetic(dot: int, sq: int, bps: int) -> None:
    cos = dot / math.sqrt(sq)
    if abs(cos - bps / 10_000) > 1e-9:  # away from the boundary floats decide too
        assert cos_below(dot, sq, bps) == (cos < bps / 10_000)
        assert cos_above(dot, sq, bps) == (cos > bps / 10_000)
    assert abs(agreement(dot, sq) - max(-1.0, min(1.0, cos)) * 65536) <= 1.0001


def test_agreement_truncates_toward_zero_at_a_perfect_square() -> None:
    # cos = 1/2 exactly is 32768/2**16; a squared norm one unit larger is just below: 32767, and
    # the negative side truncates toward zero (-32767), it does not floor (-32768).
    assert agreement(10**6, 4 * 10**12) == 32768
    assert agreement(10**6, 4 * 10**12 + 1) == 32767
    assert agreement(-(10**6), 4 * 10**12 + 1) == -32767
    assert agreement(-(10**6), 4 * 10**12) == -32768


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**24), st.integers(1, 10**7))
def test_exact_noise_level_test_matches_real_arithmetic(dot: int, sq: int, dims: int) -> None:
    level = abs(dot) / math.sqrt(sq) * math.sqrt(dims)
    if abs(level - 4.0) > 1e-6:
        assert at_noise_level(dot, sq, dims, 40_000) == (level < 4.0)


def test_flags_and_contributions_on_constructed_updates() -> None:
    rng = np.random.default_rng(0)
    p = 2_000  # noise shows |cos| about 1/sqrt(p) = 0.022 with any fixed vector
    signal = rng.integers(-1000, 1000, p).astype(np.int32)
    honest = [signal + rng.integers(-600, 600, p).astype(np.int32) for _ in range(6)]
    noise = rng.integers(-1000, 1000, p).astype(np.int32)
    updates = honest + [
        -3 * honest[0],  # sign flip: against the aggregate and long
        np.zeros(p, np.int32),
        noise,
        20 * honest[1],
        honest[2] + 1,
        honest[2].copy(),
    ]
    ups = [ClientDelta(bytes([i]) * 32, {"w": u}, 10) for i, u in enumerate(updates)]
    mean = np.mean(np.stack(honest), axis=0).round().astype(np.int32)
    weights = [10_000] * len(ups)
    scored = score_updates(ups, {"w": mean}, weights, [False] * len(ups), FlagParams())
    flags = [s.flags for s in scored]
    assert flags[0] & WITHHOLD == 0 and flags[1] & WITHHOLD == FLAG_NEAR_COPY  # 9 is 20 x 1
    assert flags[6] & FLAG_OPPOSED and flags[6] & FLAG_COS_LOW  # sign flipped
    assert flags[7] == FLAG_ZERO
    assert flags[8] & FLAG_UNCORRELATED and flags[8] & EVIDENCE  # pure noise
    assert flags[9] & FLAG_NORM and not flags[9] & FLAG_OPPOSED  # boosted 20x, right direction
    assert flags[10] & FLAG_NEAR_COPY and flags[11] & FLAG_NEAR_COPY and flags[2] & FLAG_NEAR_COPY
    assert scored[0].agreement > 0 > scored[6].agreement
    # contribution = weight <x, A> / |A|^2 x min(1, median norm / |x|) (all declared the same
    # data), 2**-16 units, floored: boosting an update earns nothing
    a = mean.astype(np.float64)
    norms = [float(np.linalg.norm(u.astype(np.float64))) for u in updates]
    median = sorted(norms)[(len(norms) - 1) // 2]
    for s, u, w, n in zip(scored, updates, weights, norms, strict=True):
        exact = w * float(u.astype(np.float64) @ a) / float(a @ a) * min(1.0, median / max(n, 1e-9))
        assert math.floor(exact) - 2 <= s.contribution <= math.floor(exact) + 2
    assert scored[9].contribution <= 1.05 * scored[1].contribution
    assert min(s.contribution for s in scored[:6]) > 0 > scored[6].contribution


def test_long_means_longer_than_the_declared_data_allows() -> None:
    """A client declaring 4x the median data may send an update 2x longer before it counts as long
    (and loses the round's reward); one declaring the median may not."""
    rng = np.random.default_rng(1)
    signal = rng.integers(-1000, 1000, 500).astype(np.int32)
    honest = [signal + rng.integers(-300, 300, 500).astype(np.int32) for _ in range(6)]
    big = 6 * honest[0]  # 6x the median norm: over 4x, under 4 x sqrt(4) = 8x
    mean = np.mean(np.stack(honest), axis=0).round().astype(np.int32)

    def flags(declared: int) -> int:
        ups = [ClientDelta(bytes([i]) * 32, {"w": u}, 100) for i, u in enumerate(honest[1:])]
        ups.append(ClientDelta(b"\xff" * 32, {"w": big}, declared))
        scored = score_updates(ups, {"w": mean}, [1] * len(ups), [False] * len(ups), FlagParams())
        return scored[-1].flags

    assert flags(100) & FLAG_NORM
    assert not flags(400) & FLAG_NORM


def run(tmp_path: Path, overrides: list[str], rounds: int = 3) -> InProcessFederation:
    cfg = load_config(None, ["clients=10", f"rounds={rounds}", "baseline=false", *overrides])
    net = InProcessFederation(tmp_path, cfg)
    net.block()
    for _ in range(rounds):
        net.run_round()
    return net


def penalties_by_kind(net: InProcessFederation) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for p in net.state.section("penalties").values():
        out.setdefault(p.kind, []).append(p.offender)
    return out


def test_sign_flip_attackers_lose_rewards_not_stake(tmp_path: Path) -> None:
    """Sign flipping is seen per round (long updates against the aggregate) but honest clients
    can look the same, so it costs the round's reward and no stake."""
    net = run(tmp_path, ["attack=sign_flip", "attack.fraction=0.2"], rounds=4)
    attackers = {net.fed.client_key(i).public_key for i in net.fed.attackers()}
    honest = {net.fed.client_key(i).public_key for i in range(10)} - attackers
    assert not net.state.section("penalties")
    start = net.genesis.state()
    earned = {
        k: net.state.account(k).balance - start.account(k).balance for k in attackers | honest
    }
    assert min(earned[k] for k in honest) > max(earned[k] for k in attackers)
    for key in attackers:
        assert net.state.account(key).stake == start.account(key).stake
    flags = [
        v.flags
        for r in net.state.section("rounds").results
        for u, v in zip(r.updates, r.verdicts, strict=True)
        if u.client in attackers
    ]
    assert sum(1 for f in flags if f & WITHHOLD) >= 0.75 * len(flags)  # long and opposed
    supply = account_total(net.genesis.state().accounts.accounts.values())
    exists, booked = supply_identity(net.state, supply)
    assert exists == booked


def test_free_riders_penalized(tmp_path: Path) -> None:
    # identical zero updates are free riding (provable, every round), not copies
    net = run(tmp_path / "zero", ["attack=free_rider", "attack.fraction=0.2"], rounds=2)
    attackers = {net.fed.client_key(i).public_key for i in net.fed.attackers()}
    kinds = penalties_by_kind(net)
    assert set(kinds) == {"free_riding"}
    assert sorted(kinds["free_riding"]) == sorted(list(attackers) * 2)
    # noise is at the noise level with every honest update: evidence in 3 of 5 rounds
    overrides = ["attack=free_rider", "attack.fraction=0.2", "attack.params.mode=noise"]
    net = run(tmp_path / "noise", overrides, rounds=3)
    kinds = penalties_by_kind(net)
    assert set(kinds) == {"flagged_updates"}
    assert sorted(kinds["flagged_updates"]) == sorted(attackers)
    assert all(net.state.account(k).jailed_until > 0 for k in attackers)


def test_colluding_copies_and_replays(tmp_path: Path) -> None:
    # ALIE colluders submit one identical vector: all of them are refused and slashed.
    net = run(tmp_path, ["attack=alie", "attack.fraction=0.3"], rounds=1)
    attackers = {net.fed.client_key(i).public_key for i in net.fed.attackers()}
    assert set(penalties_by_kind(net)["copied_payload"]) == attackers
    result = net.state.section("rounds").results[-1]
    assert not attackers & {u.client for u in result.updates}
    # Replay: resubmitting round 0's payload in round 1 is refused and slashed.
    net = run(tmp_path / "replay", ["attack=replay", "attack.fraction=0.2"], rounds=2)
    attackers = {net.fed.client_key(i).public_key for i in net.fed.attackers()}
    assert set(penalties_by_kind(net)["replayed_payload"]) == attackers


def test_clean_skewed_run_never_penalizes_and_pays_everyone(tmp_path: Path) -> None:
    net = run(tmp_path, ["data=dirichlet", "data.alpha=0.1"], rounds=4)
    assert not net.state.section("penalties")
    verdicts = [v for r in net.state.section("rounds").results for v in r.verdicts]
    assert not any(v.flags & (EVIDENCE | FREE_RIDING) for v in verdicts)
    start = net.genesis.state()
    for i in range(10):
        key = net.fed.client_key(i).public_key
        assert net.state.account(key).balance > start.account(key).balance
