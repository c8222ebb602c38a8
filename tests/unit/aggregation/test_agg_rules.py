"""Every rule on small hand-made inputs; expected values are worked out by hand in comments."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import pytest

from fedray.aggregation.base import WEIGHT_ONE, ClientDelta, TooFewUpdatesError, UpdateShapeError
from fedray.aggregation.centered_clipping import STATE_PREFIX, clip_factor
from fedray.aggregation.registry import make_strategy

Upd = Callable[..., ClientDelta]
I32_MAX = 2**31 - 1


def _delta(result: object, name: str = "w") -> list[int]:
    return result.delta[name].tolist()  # type: ignore[attr-defined]


def _weights(result: object) -> list[int]:
    return [v.weight for v in result.verdicts]  # type: ignore[attr-defined]


# --- fedavg ------------------------------------------------------------------------------------
def test_fedavg_sample_weighted_mean_rounds_half_to_even(upd: Upd) -> None:
    ups = [upd("b", [4, 7, 2, 3, -2], n=3), upd("a", [1, 2, 1, 1, -1], n=1)]
    r = make_strategy("fedavg").aggregate(ups)
    # col0: (1*1+3*4)/4 = 13/4 = 3.25 -> 3; col1: (2+21)/4 = 5.75 -> 6;
    # col2: (1+6)/4 = 1.75 -> 2; col3: (1+9)/4 = 2.5 -> 2 (tie to even); col4: (-1-6)/4 = -1.75 -> -2
    assert _delta(r) == [3, 6, 2, 2, -2]
    assert [v.key for v in r.verdicts] == [b"a", b"b"]  # key order
    assert _weights(r) == [WEIGHT_ONE // 4, 3 * WEIGHT_ONE // 4]
    assert all(v.accepted and not v.rejected and not v.clipped for v in r.verdicts)


def test_fedavg_unweighted_and_ties(upd: Upd) -> None:
    ups = [upd("a", [1, 3, -1, 2, I32_MAX], n=1), upd("b", [2, 4, -2, 3, I32_MAX], n=7)]
    r = make_strategy("fedavg", {"weighted": False}).aggregate(ups)
    # 1.5 -> 2, 3.5 -> 4, -1.5 -> -2, 2.5 -> 2; int32 max + int32 max does not overflow
    assert _delta(r) == [2, 4, -2, 2, I32_MAX]
    assert _weights(r) == [WEIGHT_ONE // 2] * 2


# --- median ------------------------------------------------------------------------------------
def test_median_odd_k_takes_the_middle(upd: Upd) -> None:
    ups = [upd("a", [1, -7, 0]), upd("b", [5, 100, 0]), upd("c", [3, -100, 9])]
    assert _delta(make_strategy("median").aggregate(ups)) == [3, -7, 0]


def test_median_even_k_halves_the_two_middles(upd: Upd) -> None:
    cols = [[1, 2, 3, 10], [9, 1, 5, 4], [-3, -2, 0, 7], [8, 4, 2, 1], [1, 2, 5, 6], [I32_MAX] * 4]
    ups = [upd(f"k{i}", [c[i] for c in cols]) for i in range(4)]
    r = make_strategy("median").aggregate(ups)
    # middles: (2+3)/2=2.5->2, (4+5)/2=4.5->4, (-2+0)/2=-1, (2+4)/2=3, (2+5)/2=3.5->4, max stays
    assert _delta(r) == [2, 4, -1, 3, 4, I32_MAX]
    assert _weights(r) == [WEIGHT_ONE // 4] * 4


# --- trimmed mean ------------------------------------------------------------------------------
def test_trimmed_mean_drops_b_each_side(upd: Upd) -> None:
    cols = [[1, 2, 3, 4, 100], [0, 0, 1, 2, -50], [10, 11, 11, 12, 13]]
    ups = [upd(f"k{i}", [c[i] for c in cols]) for i in range(5)]
    r = make_strategy("trimmed_mean", {"beta": 0.2}).aggregate(ups)  # b = floor(0.2*5) = 1
    # (2+3+4)/3 = 3; (0+0+1)/3 = 0.33 -> 0; (11+11+12)/3 = 11.33 -> 11
    assert _delta(r) == [3, 0, 11]
    plain = make_strategy("trimmed_mean", {"beta": 0.1}).aggregate(ups)  # b = floor(0.5) = 0
    # plain means: 110/5 = 22; -47/5 = -9.4 -> -9; 57/5 = 11.4 -> 11
    assert _delta(plain) == [22, -9, 11]


def test_trimmed_mean_even_k_quarter(upd: Upd) -> None:
    ups = [upd(f"k{i}", [v]) for i, v in enumerate([-1000, 1, 4, 1000])]
    # beta=0.25, K=4: b=1, mean(1, 4) = 2.5 -> 2
    assert _delta(make_strategy("trimmed_mean", {"beta": 0.25}).aggregate(ups)) == [2]


# --- krum / multi-krum -------------------------------------------------------------------------
# Points p0..p4 = (0,0), (1,0), (0,2), (2,2), (50,50) in units of S, split over two tensors.
# Squared distances / S^2: d01=1 d02=4 d03=8 d12=5 d13=5 d23=4, d04=5000 d14=4901 d24=4804 d34=4608.
# With f=1, K=5 each score sums the 5-1-2 = 2 nearest: p0: 1+4=5, p1: 1+5=6, p2: 4+4=8,
# p3: 4+5=9, p4: 4608+4804. Ranking p0, p1, p2, p3, p4. S is odd and 50*S is near 2**30, so the
# distances exceed int64 and the means hit ties.
S = 2**24 + 1
POINTS = [(0, 0), (1, 0), (0, 2), (2, 2), (50, 50)]


def _krum_updates(upd: Upd) -> list[ClientDelta]:
    return [upd(f"p{i}", {"a": [x * S], "b": [y * S]}) for i, (x, y) in enumerate(POINTS)]


def test_krum_picks_the_most_central_update(upd: Upd) -> None:
    r = make_strategy("krum", {"f": 1}).aggregate(_krum_updates(upd))
    assert _delta(r, "a") == [0] and _delta(r, "b") == [0]
    assert [v.accepted for v in r.verdicts] == [True, False, False, False, False]
    assert [v.rejected for v in r.verdicts] == [False, True, True, True, True]
    assert _weights(r) == [WEIGHT_ONE, 0, 0, 0, 0]
    # score = (K-1-rank)/(K-1): 1, 3/4, 1/2, 1/4, 0
    assert [v.score for v in r.verdicts] == [WEIGHT_ONE, 49152, 32768, 16384, 0]


def test_multi_krum_averages_the_m_best(upd: Upd) -> None:
    ups = _krum_updates(upd)
    r2 = make_strategy("multi_krum", {"f": 1, "m": 2}).aggregate(ups)
    # mean(p0, p1) = (S/2, 0); S/2 = 2**23 + 0.5 -> 2**23 (tie to even)
    assert (_delta(r2, "a"), _delta(r2, "b")) == ([2**23], [0])
    assert _weights(r2) == [WEIGHT_ONE // 2] * 2 + [0] * 3
    r3 = make_strategy("multi_krum", {"f": 1, "m": 3}).aggregate(ups)
    # mean(p0, p1, p2) = (S/3, 2S/3): S = 16777217 -> 5592405.67 -> 5592406; 11184811.33 -> 11184811
    assert (_delta(r3, "a"), _delta(r3, "b")) == ([5592406], [11184811])
    r_cap = make_strategy("multi_krum", {"f": 1, "m": 10}).aggregate(ups)
    assert [v.accepted for v in r_cap.verdicts] == [True] * 4 + [False]  # m capped at K - f


def test_krum_needs_2f_plus_3_updates(upd: Upd) -> None:
    with pytest.raises(TooFewUpdatesError):
        make_strategy("krum", {"f": 2}).aggregate(_krum_updates(upd))


# --- centered clipping -------------------------------------------------------------------------
U = 2**20  # one "unit" in fixed point (1/16)


def test_clip_factor_rounds_down() -> None:
    assert clip_factor(3, 16) == 49152  # 3/4
    assert clip_factor(1, 3) == 37837  # 65536/sqrt(3) = 37837.2
    assert clip_factor(5, 4) == WEIGHT_ONE  # never above 1
    assert clip_factor(0, 0) == WEIGHT_ONE  # at the center nothing is clipped


def _cc_updates(upd: Upd) -> list[ClientDelta]:
    # norms from the zero center: 5U, 0, 10U
    return [upd("a", [3 * U, 4 * U]), upd("b", [0, 0]), upd("c", [6 * U, 8 * U])]


@pytest.mark.parametrize(
    "config", [{"radius": 5 / 16, "relative": False}, {"radius": 1.0, "relative": True}]
)
def test_centered_clipping_by_hand(upd: Upd, config: dict[str, object]) -> None:
    # tau = 5U (absolute 5/16, or 1x the median distance 5U): factors 1, 1, 1/2.
    # v = (x_a + x_b + x_c/2)/3 = ((3+3)U, (4+4)U)/3 = (2U, 8U/3) -> (2097152, 2796202.67 -> 2796203)
    r = make_strategy("centered_clipping", config).aggregate(_cc_updates(upd))
    assert _delta(r) == [2 * U, 2796203]
    assert [v.score for v in r.verdicts] == [WEIGHT_ONE, WEIGHT_ONE, WEIGHT_ONE // 2]
    assert [v.clipped for v in r.verdicts] == [False, False, True]
    assert _weights(r) == [21845, 21845, 10923]  # 65536/3 = 21845.3, 32768/3 = 10922.7
    assert r.state[STATE_PREFIX + "w"].tolist() == [2 * U, 2796203]  # momentum 0: center = delta


def test_centered_clipping_large_radius_is_the_mean(upd: Upd) -> None:
    r = make_strategy("centered_clipping", {"radius": 2.0}).aggregate(_cc_updates(upd))
    assert _delta(r) == [3 * U, 4 * U]  # (9U/3, 12U/3), nothing clipped
    assert not any(v.clipped for v in r.verdicts)


def test_centered_clipping_momentum_and_carried_center(upd: Upd) -> None:
    strat = make_strategy(
        "centered_clipping", {"radius": 5 / 16, "relative": False, "momentum": 0.5}
    )
    r = strat.aggregate(_cc_updates(upd))
    # next center = (0 + delta)/2 = (U, 2796203/2 = 1398101.5 -> 1398102)
    center = r.state[STATE_PREFIX + "w"]
    assert center.tolist() == [U, 1398102]
    # round 2 around that center: an update equal to it is at distance 0, the other at 5U
    ups = [
        upd("x", center.tolist()),
        upd("y", [U + 3 * U, 1398102 + 4 * U]),
        upd("z", center.tolist()),
    ]
    r2 = strat.aggregate(ups, r.state)
    # factors 1, 1, 1 (5U <= tau): v = center + (3U, 4U)/3 = (2U, 1398102 + 1398101.33 -> 2796203)
    assert _delta(r2) == [2 * U, 2796203]
    with pytest.raises(UpdateShapeError):
        strat.aggregate(ups, {"center/other": center})


def test_centered_clipping_two_iterations_match_fractions(upd: Upd) -> None:
    xs, tau = (0, 0, 10 * U), 2 * U
    ups = [upd(k, [x]) for k, x in zip("abc", xs, strict=True)]
    centers, v = [], 0
    for _ in range(2):  # the documented recursion, in Fractions: floor clip factors, half-even step
        factors = [
            WEIGHT_ONE
            if x == v
            else min(WEIGHT_ONE, math.floor(Fraction(tau * WEIGHT_ONE, abs(x - v))))
            for x in xs
        ]
        step = Fraction(sum(c * (x - v) for c, x in zip(factors, xs, strict=True)), 3 * WEIGHT_ONE)
        v += round(step)
        centers.append(v)
    # first step by hand: factors 1, 1, floor(65536 * 2/10) = 13107; 10U * 13107 / (3 * 65536) = 699040
    assert centers[0] == 699040
    for iterations, want in ((1, centers[0]), (2, centers[1])):
        config = {"radius": 2 / 16, "relative": False, "iterations": iterations}
        assert _delta(make_strategy("centered_clipping", config).aggregate(ups)) == [want]


# --- bucketing ---------------------------------------------------------------------------------
def test_bucketing_composes_with_fedavg(upd: Upd) -> None:
    ups = [upd(f"k{i}", [v], n=1) for i, v in enumerate([0, 2, 4, 6])]
    r = make_strategy(
        "bucketing", {"s": 2, "inner": "fedavg", "inner_config": {"weighted": False}}
    ).aggregate(ups)
    # any pairing has even pair sums, so bucket means are exact and their mean is 12/4 = 3
    assert _delta(r) == [3]
    assert _weights(r) == [WEIGHT_ONE // 4] * 4  # each bucket 1/2, split over 2 members


def test_bucketing_s1_is_the_inner_rule(
    upd: Upd, rand_updates: Callable[..., list[ClientDelta]]
) -> None:
    ups = rand_updates(7, {"w": (5,)}, seed=3)
    inner = make_strategy("multi_krum", {"f": 1, "m": 3}).aggregate(ups)
    wrapped = make_strategy(
        "bucketing", {"s": 1, "inner": "multi_krum", "inner_config": {"f": 1, "m": 3}}
    ).aggregate(ups)
    assert _delta(wrapped) == _delta(inner)
    assert [(v.accepted, v.weight, v.score) for v in wrapped.verdicts] == [
        (v.accepted, v.weight, v.score) for v in inner.verdicts
    ]


def test_bucketing_one_bucket_is_the_plain_mean(upd: Upd) -> None:
    ups = [upd(f"k{i}", [v]) for i, v in enumerate([1, 2, 4, 8])]
    r = make_strategy("bucketing", {"s": 4, "inner": "median"}).aggregate(ups)
    assert _delta(r) == [4]  # 15/4 = 3.75 -> 4, and the median of one value is itself
