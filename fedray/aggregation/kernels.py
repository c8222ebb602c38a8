"""Compiled exact loops for large weighted means (numba).

Owns: `weighted_mean_into`, which multiplies int32 rows by integer weights and adds them, eight
rows a pass, into an int64 block that stays in cache, then divides the block by the weights' sum rounded
half to even, and `readonly_rows`, the row list it takes. numpy has no widening multiply-add: its int32 -> int64 sums run a casting loop per row and a
separate multiply pass, about 2.2-2.8x a float32 mean of the same values at 32 x 1M parameters, where
these loops take about 0.8x (docs/benchmarks.md). Importing numba costs about 0.1 s and 60-150 MB
of LLVM per process, which is why `fixedpoint.weighted_mean` imports this module only for large
batches.

Exact, so its bytes equal the numpy path's (`tests/unit/aggregation/test_agg_kernels.py`):
products and partial sums are int64 and stay within sum(w) * 2**31 < 2**63 (the caller's bound:
sum(w) <= MAX_TOTAL_SAMPLES); the quotient is estimated in float64 (off by less than 2**-20 for a
mean of int32 values) and then corrected by one exact integer step to the half-to-even rounding.

Ignores: when to use it, threads (callers run disjoint ranges on their pool; the kernel releases
the GIL), validation (rows are validated int32 updates).

The loops are cached on disk by numba (beside this file, or in the user's cache directory when
that is read-only; compiled per process when neither is writable), so a new process loads them
rather than compiling them again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np

BLOCK = 1 << 15
"""Coordinates summed at a time: the int64 accumulator (256 KiB) stays in L2 while every row adds
into it. Any value gives the same bytes."""


def _jit(fn: Callable[..., Any]) -> Any:
    """Compile `fn` in nopython mode without the GIL, cached on disk where numba finds a writable
    place; where it finds none (a read-only install without a usable home directory), compiled in
    each process instead of failing the import."""
    try:
        return numba.njit(nogil=True, boundscheck=False, cache=True)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, boundscheck=False)(fn)


@_jit
def _add_eight(
    acc: np.ndarray,
    r0: np.ndarray,
    w0: int,
    r1: np.ndarray,
    w1: int,
    r2: np.ndarray,
    w2: int,
    r3: np.ndarray,
    w3: int,
    r4: np.ndarray,
    w4: int,
    r5: np.ndarray,
    w5: int,
    r6: np.ndarray,
    w6: int,
    r7: np.ndarray,
    w7: int,
) -> None:
    # Eight rows a pass: an eighth of the accumulator traffic and of the calls from Python.
    for i in range(acc.shape[0]):
        low = (w0 * np.int64(r0[i]) + w1 * np.int64(r1[i])) + (
            w2 * np.int64(r2[i]) + w3 * np.int64(r3[i])
        )
        high = (w4 * np.int64(r4[i]) + w5 * np.int64(r5[i])) + (
            w6 * np.int64(r6[i]) + w7 * np.int64(r7[i])
        )
        acc[i] += low + high


@_jit
def _add_two(acc: np.ndarray, r0: np.ndarray, w0: int, r1: np.ndarray, w1: int) -> None:
    for i in range(acc.shape[0]):
        acc[i] += w0 * np.int64(r0[i]) + w1 * np.int64(r1[i])


@_jit
def _add_one(acc: np.ndarray, r0: np.ndarray, w0: int) -> None:
    for i in range(acc.shape[0]):
        acc[i] += w0 * np.int64(r0[i])


@_jit
def _divide_into(acc: np.ndarray, den: int, out: np.ndarray) -> None:
    for i in range(acc.shape[0]):
        num = acc[i]
        q = np.int64(np.rint(np.float64(num) / den))
        r = num - q * den  # exact: |q * den| <= |num| + den
        if 2 * r > den or (2 * r == den and (q & 1) == 1):
            q += 1
        elif 2 * r < -den or (2 * r == -den and (q & 1) == 1):
            q -= 1
        out[i] = q


def readonly_rows(rows: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Read-only contiguous views of 1-D int32 rows: one argument type whatever the rows' own
    flags (a decoded update may be read-only, a fresh one writable), so each loop compiles once."""
    views = []
    for r in rows:
        v = np.ascontiguousarray(r).view()
        v.flags.writeable = False
        views.append(v)
    return views


def weighted_mean_into(
    rows: Sequence[np.ndarray],
    weights: Sequence[int],
    den: int,
    out: np.ndarray,
    start: int,
    stop: int,
) -> None:
    """out[start:stop] = round_half_even(sum_k weights[k] * rows[k] / den) over that range.

    `rows` from `readonly_rows` (all of `out`'s length), `weights` >= 0 with sum(weights) == den
    and den * 2**31 < 2**63, `out` a writable int32 array."""
    acc = np.empty(min(BLOCK, max(stop - start, 0)), dtype=np.int64)
    k = len(rows)
    for a in range(start, stop, BLOCK):
        b = min(stop, a + BLOCK)
        ac = acc[: b - a]
        ac[:] = 0
        j = 0
        while j + 8 <= k:
            _add_eight(ac, *[x for i in range(j, j + 8) for x in (rows[i][a:b], weights[i])])
            j += 8
        while j + 2 <= k:
            _add_two(ac, rows[j][a:b], weights[j], rows[j + 1][a:b], weights[j + 1])
            j += 2
        if j < k:
            _add_one(ac, rows[j][a:b], weights[j])
        _divide_into(ac, den, out[a:b])
