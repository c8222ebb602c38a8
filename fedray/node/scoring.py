"""Contribution flags and agreement of each update, from exact integer geometry.

After a round is aggregated, each update is compared with the aggregate and with the other updates
of the round. Every quantity is an exact integer (dot products and squared norms of int32 fixed
point from `fedray.aggregation.dots`), and every threshold test is an integer inequality on squares,
so all validators set the same flags. The flags (`fedray.core.precompiles.FLAG_*`) follow what was
measured during design (docs/economy.md): per-round "worst f/n" or "was clipped" flags hit 19-95% of
honest clients, while this combination, held over k of the last w rounds by the slashing contract,
separated attackers from honest clients over short runs (docs/slashing.md has the current figures).

Deliberately ignored: anything stateful across rounds (the slashing contract keeps the history).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fedray.aggregation.base import ClientDelta
from fedray.aggregation.dots import exact_cross, exact_gram, vector_sqnorm
from fedray.aggregation.fixedpoint import make_batch
from fedray.core.precompiles import (
    FLAG_COS_HIGH,
    FLAG_COS_LOW,
    FLAG_NEAR_COPY,
    FLAG_NORM,
    FLAG_REJECTED,
    FLAG_UNCORRELATED,
    FLAG_ZERO,
)

BPS = 10_000
ONE = 1 << 16


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


def score_updates(
    updates: Sequence[ClientDelta],
    delta: dict[str, np.ndarray],
    rejected: Sequence[bool],
    flag_params: tuple[int, int, int, int, int],
    threads: int = 1,
) -> list[tuple[int, int]]:
    """(flags, agreement) per update, in the given order of `updates` (sorted by key)."""
    cos_low, cos_high, norm_ratio, uncorrelated, copy = flag_params
    batch = make_batch(updates)
    gram = exact_gram(batch, threads)
    agg = [np.ascontiguousarray(delta[name], dtype=np.int32).reshape(-1) for name in batch.names]
    cross = [row[0] for row in exact_cross(batch, [agg], threads)]
    agg_sq = vector_sqnorm(agg)
    k = len(updates)
    norms = [gram[i][i] for i in range(k)]
    median = sorted(norms)[(k - 1) // 2]  # lower median of squared norms (monotone in the norm)
    out = []
    for i in range(k):
        flags = FLAG_REJECTED if rejected[i] else 0
        n_i = norms[i]
        if n_i == 0:
            out.append((flags | FLAG_ZERO, 0))
            continue
        agree = agreement(cross[i], n_i * agg_sq) if agg_sq else 0
        if agg_sq:
            if cos_below(cross[i], n_i * agg_sq, cos_low):
                flags |= FLAG_COS_LOW
            if cos_high < BPS and cos_above(cross[i], n_i * agg_sq, cos_high):
                flags |= FLAG_COS_HIGH
        # norm above r x the median (on squares: n * BPS^2 > r^2 * median). Only the upper side:
        # an honest client with a small shard takes fewer SGD steps and sends a short update
        # (measured on Dirichlet(0.5): 1/3 of the median flagged such clients), while too-short
        # updates that carry nothing are caught as zero or uncorrelated.
        if median and n_i * BPS * BPS > norm_ratio**2 * median:
            flags |= FLAG_NORM
        others = [j for j in range(k) if j != i and norms[j]]
        if others and all(
            not cos_above(abs(gram[i][j]), n_i * norms[j], uncorrelated) for j in others
        ):
            flags |= FLAG_UNCORRELATED
        # Payloads are private until the round closes: near-identical updates of one round mean
        # collusion, and every member of such a pair is flagged.
        if any(cos_above(gram[i][j], n_i * norms[j], copy) for j in others):
            flags |= FLAG_NEAR_COPY
        out.append((flags, agree))
    return out
