"""Compiled exact kernel for large weighted means (numba).

Owns: `weighted_mean_into`, one fused pass that multiplies int32 rows by integer weights, adds them
in int64 and divides by the weights' sum rounded half to even, and `readonly_rows`, the row list it
takes. numpy has no widening multiply-add: its int32 -> int64 sums run a casting loop per row and a
separate multiply pass, about 2.2-2.8x a float32 mean of the same values at 32 x 1M parameters, where
this loop takes about 1.2x (docs/benchmarks.md). numba compiles it once per process, on first use
(about 0.5 s and 100-150 MB of LLVM per process), which is why `fixedpoint.weighted_mean` calls it
only for large batches.

Exact, so its bytes equal the numpy path's (`tests/unit/aggregation/test_agg_kernels.py`):
products and partial sums are int64 and stay within sum(w) * 2**31 < 2**63 (the caller's bound:
sum(w) <= MAX_TOTAL_SAMPLES); the quotient is estimated in float64 (off by less than 2**-20 for a
mean of int32 values) and then corrected by one exact integer step to the half-to-even rounding.

Ignores: when to use it, threads (callers run disjoint ranges on their pool; the kernel releases
the GIL), validation (rows are validated int32 updates).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

BLOCK = 8192
"""Coordinates summed at a time: the int64 accumulator (64 KiB) stays in L1/L2 while every row adds
into it. Any value gives the same bytes."""


@functools.cache
def _kernel() -> Callable[..., None]:
    """The compiled loop (numba imported and the function compiled on first use only)."""
    import numba

    @numba.njit(nogil=True, boundscheck=False, cache=False)
    def weighted_mean_range(rows: Any, w: Any, den: int, out: Any, start: int, stop: int) -> None:
        acc = np.empty(BLOCK, np.int64)
        k = len(rows)
        for a in range(start, stop, BLOCK):
            b = min(stop, a + BLOCK)
            ac = acc[: b - a]
            ac[:] = 0
            j = 0
            while j + 1 < k:  # two rows a pass: half the accumulator traffic
                r0 = rows[j][a:b]
                r1 = rows[j + 1][a:b]
                w0 = w[j]
                w1 = w[j + 1]
                for i in range(b - a):
                    ac[i] += w0 * np.int64(r0[i]) + w1 * np.int64(r1[i])
                j += 2
            if j < k:
                r0 = rows[j][a:b]
                w0 = w[j]
                for i in range(b - a):
                    ac[i] += w0 * np.int64(r0[i])
            o = out[a:b]
            for i in range(b - a):
                num = ac[i]
                q = np.int64(np.rint(np.float64(num) / den))
                r = num - q * den  # exact: |q * den| <= |num| + den
                if 2 * r > den or (2 * r == den and (q & 1) == 1):
                    q += 1
                elif 2 * r < -den or (2 * r == -den and (q & 1) == 1):
                    q -= 1
                o[i] = q

    return weighted_mean_range  # type: ignore[no-any-return]


def readonly_rows(rows: Sequence[np.ndarray]) -> Any:
    """A numba typed list of read-only views of 1-D int32 rows: one element type whatever the
    rows' own flags (a decoded update may be read-only, a fresh one writable), so the kernel
    compiles once."""
    from numba.typed import List

    views = []
    for r in rows:
        v = np.ascontiguousarray(r).view()
        v.flags.writeable = False
        views.append(v)
    return List(views)


def weighted_mean_into(
    rows: Any, weights: np.ndarray, den: int, out: np.ndarray, start: int, stop: int
) -> None:
    """out[start:stop] = round_half_even(sum_k weights[k] * rows[k] / den) over that range.

    `rows` from `readonly_rows` (all of one tensor's length), `weights` int64 >= 0 with
    sum(weights) == den and den * 2**31 < 2**63, `out` a writable int32 array of that length."""
    _kernel()(rows, weights, den, out, start, stop)
