"""Contribution flags, agreement and contribution of each update, from exact integer geometry.

After a round is aggregated, each update is compared with the aggregate and with the other updates
of the round. Every quantity is an exact integer (dot products and squared norms of int32 fixed
point from `fedray.aggregation.dots`), and every threshold test is an integer inequality on squares,
so all validators set the same flags and compute the same contributions.

Per update i, with x_i its delta, A the round's aggregate delta, w_i the weight the rule gave it
(2**-16 units), and "longer than r" meaning |x_i| > r x the round's median norm x
sqrt(max(1, n_i / median n)) (n the declared sample counts: a client with more data takes more SGD
steps and legitimately sends a longer update; on MNIST-5k at Dirichlet alpha 0.1 the clients with
3x the median data sent updates 3-5x the median norm in every round):
- agreement: cos(x_i, A) in 2**-16 units;
- contribution: w_i <x_i, A> / |A|^2 x min(1, L_i / |x_i|) (2**-16 units, floored), L_i the
  round's median norm x sqrt(max(1, n_i / median n)): the part of the round's step that x_i
  supplied, measured along the step, counting the update as no longer than its declared data
  allows (so inflating an update earns nothing). Removing w_i x_i from the step shortens it along
  its own direction by w_i <x_i, A> / |A|^2 (leave-one-out on the aggregate with the rule's
  weights held), and in the linear game v(S) = <sum_{i in S} c_i, A> / |A|^2 over the counted
  terms c_i the Shapley value of i is its own term;
- flags (`fedray.core.precompiles.FLAG_*`, thresholds in `FlagParams`): zero; noise (every
  |cos(x_i, x_j)| below z / sqrt(P), the level independent noise shows in P dimensions); near copy
  (cos above `copy` with another update: payloads are private until the round closes); long
  (longer than `norm_ratio`); opposed (cos to A below -`opposed_cos` and longer than
  `opposed_norm`); cosine to A below or above the reward thresholds; rejected by the rule.

What each flag may cost a client is the contracts' decision (incentives, slashing), made on what
honest updates were measured to do (docs/incentives.md). Deliberately ignored: anything stateful
across rounds (the slashing contract keeps each client's history).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedray.aggregation.base import ClientDelta
from fedray.aggregation.dots import exact_gram, exact_products, vector_sqnorm
from fedray.aggregation.fixedpoint import make_batch
from fedray.core.precompiles import (
    FLAG_COS_HIGH,
    FLAG_COS_LOW,
    FLAG_NEAR_COPY,
    FLAG_NORM,
    FLAG_OPPOSED,
    FLAG_REJECTED,
    FLAG_UNCORRELATED,
    FLAG_ZERO,
    FlagParams,
)

BPS = 10_000
ONE = 1 << 16


@dataclass(frozen=True)
class UpdateScore:
    """What the precompile records about one update besides the rule's verdict."""

    flags: int
    agreement: int  # cos(x, A), 2**-16 units
    contribution: int  # w <x, A> / |A|^2, 2**-16 units


def cos_below(dot: int, sq_norms: int, bps: int) -> bool:
    """dot / sqrt(sq_norms) < bps / 10000, exactly (sq_norms > 0)."""
    lhs, rhs_sq = BPS * dot, bps * bps * sq_norms  # compare lhs with bps * sqrt(sq_norms)
    if bps >= 0:
        return lhs < 0 or lhs * lhs < rhs_sq
    return lhs < 0 and lhs * lhs > rhs_sq


def cos_equal(dot: int, sq_norms: int, bps: int) -> bool:
    """dot / sqrt(sq_norms) == bps / 10000, exactly."""
    lhs = BPS * dot
    if (lhs > 0) != (bps > 0) or (lhs < 0) != (bps < 0):
        return False  # different signs (or one of them zero)
    return lhs * lhs == bps * bps * sq_norms


def cos_above(dot: int, sq_norms: int, bps: int) -> bool:
    """dot / sqrt(sq_norms) > bps / 10000, exactly."""
    return not cos_below(dot, sq_norms, bps) and not cos_equal(dot, sq_norms, bps)


def agreement(dot: int, sq_norms: int) -> int:
    """cosine in 2**-16 units, truncated toward zero."""
    if sq_norms == 0:
        return 0
    magnitude = math.isqrt(ONE * ONE * dot * dot // sq_norms)
    return min(ONE, magnitude) if dot >= 0 else -min(ONE, magnitude)


def at_noise_level(dot: int, sq_norms: int, dims: int, z_bps: int) -> bool:
    """|dot| / sqrt(sq_norms) < (z_bps / 10000) / sqrt(dims), exactly."""
    return (BPS * dot) ** 2 * dims < z_bps * z_bps * sq_norms


def score_updates(
    updates: Sequence[ClientDelta],
    delta: dict[str, np.ndarray],
    weights: Sequence[int],
    rejected: Sequence[bool],
    flag_params: FlagParams,
    threads: int = 1,
) -> list[UpdateScore]:
    """One `UpdateScore` per update, in the given order of `updates` (sorted by key); `weights`
    and `rejected` are the rule's verdicts in the same order."""
    fp = flag_params
    batch = make_batch(updates)
    agg = [np.ascontiguousarray(delta[name], dtype=np.int32).reshape(-1) for name in batch.names]
    products, norms = exact_products(batch, [agg], threads, sqnorms=True)
    cross = [row[0] for row in products]
    agg_sq = vector_sqnorm(agg)
    dims = sum(int(np.prod(shape)) for shape in batch.shapes)
    k = len(updates)
    if pairs_flagged(fp):
        uncorrelated, near_copy = pair_flags(exact_gram(batch, threads), dims, fp)
    else:  # neither pair flag can be set: skip the k x k Gram (k^2 P, docs/scaling.md)
        uncorrelated = near_copy = [False] * k
    median = sorted(norms)[(k - 1) // 2]  # lower median of squared norms (monotone in the norm)
    samples = [u.n_samples for u in updates]
    median_n = sorted(samples)[(k - 1) // 2]

    def longer(i: int, ratio_bps: int) -> bool:
        # |x|^2 BPS^2 m_n > r^2 m max(m_n, n_i): exact in integers (m_n >= 1: counts are positive)
        return norms[i] * BPS * BPS * median_n > ratio_bps**2 * median * max(median_n, samples[i])

    out = []
    for i in range(k):
        flags = FLAG_REJECTED if rejected[i] else 0
        n_i = norms[i]
        if n_i == 0:
            out.append(UpdateScore(flags | FLAG_ZERO, 0, 0))
            continue
        agree, contribution = 0, 0
        if agg_sq:
            agree = agreement(cross[i], n_i * agg_sq)
            counted = min(
                ONE, math.isqrt(ONE * ONE * median * max(median_n, samples[i]) // (median_n * n_i))
            )
            # floor: the same on every machine
            contribution = weights[i] * cross[i] * counted // (ONE * agg_sq)
            if cos_below(cross[i], n_i * agg_sq, fp.cos_low):
                flags |= FLAG_COS_LOW
            if fp.cos_high < BPS and cos_above(cross[i], n_i * agg_sq, fp.cos_high):
                flags |= FLAG_COS_HIGH
            if cos_below(cross[i], n_i * agg_sq, -fp.opposed_cos) and longer(i, fp.opposed_norm):
                flags |= FLAG_OPPOSED
        # Only the upper side of the norm: an honest client with a small shard takes fewer SGD
        # steps and sends a short update, while updates that carry nothing are zero or noise.
        if longer(i, fp.norm_ratio):
            flags |= FLAG_NORM
        if uncorrelated[i]:
            flags |= FLAG_UNCORRELATED
        # Payloads are private until the round closes: near-identical updates of one round mean
        # collusion, and every member of such a pair is flagged.
        if near_copy[i]:
            flags |= FLAG_NEAR_COPY
        out.append(UpdateScore(flags, agree, contribution))
    return out


def pairs_flagged(fp: FlagParams) -> bool:
    """Whether the pair flags can be set at all: `noise_z` 0 puts no cosine below the noise level,
    and no cosine exceeds a `copy` of 10000 (1.0). Chains with large rounds of large models turn
    both off to spare every validator the k x k Gram matrix."""
    return fp.noise_z > 0 or fp.copy < BPS


PAIR_MARGIN = 1e-9
"""How far from a threshold a float cosine decides a pair alone: cosines computed in float64 from
the exact integers are off by a few units of 2**-53 (under 1e-15); closer pairs take the exact
integer test."""


def pair_flags(
    gram: Sequence[Sequence[int]], dims: int, fp: FlagParams
) -> tuple[list[bool], list[bool]]:
    """Per update, (at noise level with every other nonzero update, near copy of some other one),
    exactly as `at_noise_level` and `cos_above` over every pair decide, in O(K^2) numpy work
    instead of K^2 big-integer tests: the float cosine settles every pair but those within
    PAIR_MARGIN of a threshold, which the exact tests settle."""
    k = len(gram)
    norms = [gram[i][i] for i in range(k)]
    root = np.sqrt(np.array(norms, dtype=np.float64))
    nonzero = root > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.array(gram, dtype=np.float64) / np.outer(root, root)
    noise_t = fp.noise_z / BPS / math.sqrt(dims)
    copy_t = fp.copy / BPS
    uncorrelated, near_copy = [], []
    for i in range(k):
        others = nonzero.copy()
        others[i] = False
        if not nonzero[i] or not others.any():
            uncorrelated.append(False)
            near_copy.append(False)
            continue
        row = cos[i]
        size = np.abs(row[others])
        if (size > noise_t + PAIR_MARGIN).any():
            quiet = False
        else:
            close = np.flatnonzero(others & (np.abs(row) >= noise_t - PAIR_MARGIN))
            n_i = norms[i]
            quiet = all(at_noise_level(gram[i][j], n_i * norms[j], dims, fp.noise_z) for j in close)
        uncorrelated.append(quiet)
        maybe = np.flatnonzero(others & (row > copy_t - PAIR_MARGIN))
        near_copy.append(any(cos_above(gram[i][j], norms[i] * norms[j], fp.copy) for j in maybe))
    return uncorrelated, near_copy
