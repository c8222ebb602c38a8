"""Exact dot products, squared norms and Gram matrices of int32 fixed-point updates.

Where the values are small enough (m the largest |value|, P the coordinates: blocks of b <=
DOT_BLOCK coordinates with b * m**2 < 2**53 and b >= MIN_DIRECT_BLOCK, and P * m**2 < 2**63),
float64 BLAS runs on the values themselves: every partial sum of a block is an integer below
2**53, exact whatever the order, and the int64 sums of the blocks cannot overflow. Model updates
are usually this small (the bench task's reach 2**22 of 2**31), and this path does a quarter of
the arithmetic of the general one.

Otherwise, float64 BLAS on 16-bit halves: x = hi * 2**16 + lo with lo in [0, 2**16) and
|hi| <= 2**15, so every product is an integer of magnitude <= 2**32 and every partial sum over a
block of DOT_BLOCK = 2**12 coordinates stays below 2**44 < 2**53: float64 holds all of them
exactly, whatever order, blocking or FMA use BLAS picks (and however many BLAS threads). Block
results are summed in int64 (|sum| <= P * 2**32 < 2**63 for P <= MAX_PARAMS < 2**31) and the
halves are combined in Python ints, which cannot overflow. So results are exact integers,
independent of threads and chunking.
Speed only: the products are many small GEMMs, so BLAS should run single-threaded (as in a Ray
worker, OMP_NUM_THREADS=1) and parallelism come from `threads`; OpenBLAS's own threads spin against
other processes on a shared host (5x slower measured on 2 busy cores).

Ignores: what the products are used for (Krum distances, clipping radii).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fedray.aggregation.fixedpoint import Batch, Chunk, max_abs, run_chunks

DOT_BLOCK = 1 << 12
"""Coordinates per BLAS call: keeps the float64 halves of 32 updates (1 MiB) in cache."""
MIN_DIRECT_BLOCK = 1 << 8
"""Shortest block of the direct path: below it, more and smaller BLAS calls would cost more than
the halves' four-fold arithmetic saves."""


def direct_block(batch: Batch, others: Sequence[Sequence[np.ndarray]] = ()) -> int:
    """Coordinates per block of the direct path for the updates and `others` (see the module
    docstring), or 0 where the values are too large for it (the halves are used)."""
    m = max(batch.max_abs, max_abs(others))
    if m == 0:
        return DOT_BLOCK
    coordinates = sum(math.prod(shape) for shape in batch.shapes)
    if coordinates * m * m >= 1 << 63:
        return 0
    block = min(DOT_BLOCK, ((1 << 53) - 1) // (m * m))
    return block if block >= MIN_DIRECT_BLOCK else 0


def _values(rows: Sequence[np.ndarray]) -> np.ndarray:
    """(r, c) float64 of the values themselves (int32 converts exactly)."""
    return np.stack(rows).astype(np.float64)


def _halves(rows: Sequence[np.ndarray]) -> np.ndarray:
    """(2r, c) float64: hi halves (x >> 16, |hi| <= 2**15) then lo halves (x & 0xFFFF)."""
    block = np.stack(rows)
    r = block.shape[0]
    s = np.empty((2 * r, block.shape[1]), dtype=np.float64)
    np.right_shift(block, 16, out=s[:r], casting="unsafe")
    np.bitwise_and(block, 0xFFFF, out=s[r:], casting="unsafe")
    return s


def _blocks(c: Chunk, size: int = DOT_BLOCK) -> list[Chunk]:
    t, a, b = c
    return [(t, i, min(i + size, b)) for i in range(a, b, size)]


def _combine(hh: int, hl: int, lh: int, ll: int) -> int:
    return (hh << 32) + ((hl + lh) << 16) + ll


def exact_products(
    batch: Batch, others: Sequence[Sequence[np.ndarray]], threads: int = 1, sqnorms: bool = False
) -> tuple[list[list[int]], list[int]]:
    """<x_k, y_j> exactly for every update k and every vector y_j (flat int32 arrays per tensor,
    like `Batch.outputs()`), as a K x J matrix of Python ints; with `sqnorms`, also ||x_k||**2
    (else []). One pass over the updates serves both."""
    kk, jj = batch.k, len(others)
    block = direct_block(batch, others)
    if block:
        return _direct_products(batch, others, block, threads, sqnorms)

    def chunk(c: Chunk) -> np.ndarray:
        acc = np.zeros((2 * kk, 2 * jj + 3), dtype=np.int64)
        for t, a, b in _blocks(c):
            sx = _halves(batch.rows((t, a, b)))
            if jj:
                sy = _halves([y[t][a:b] for y in others])
                acc[:, : 2 * jj] += (sx @ sy.T).astype(np.int64)  # exact, see module docstring
            if sqnorms:
                hi, lo = sx[:kk], sx[kk:]
                acc[:kk, 2 * jj] += np.einsum("ij,ij->i", hi, hi).astype(np.int64)
                acc[:kk, 2 * jj + 1] += np.einsum("ij,ij->i", hi, lo).astype(np.int64)
                acc[:kk, 2 * jj + 2] += np.einsum("ij,ij->i", lo, lo).astype(np.int64)
        return acc

    total = sum(run_chunks(chunk, batch.chunks, threads), np.zeros((2 * kk, 2 * jj + 3), np.int64))
    m = [[int(v) for v in row] for row in total]
    cross = [
        [_combine(m[i][j], m[i][jj + j], m[kk + i][j], m[kk + i][jj + j]) for j in range(jj)]
        for i in range(kk)
    ]
    norms = [
        _combine(m[i][2 * jj], m[i][2 * jj + 1], m[i][2 * jj + 1], m[i][2 * jj + 2])
        for i in range(kk)
    ]
    return cross, norms if sqnorms else []


def _direct_products(
    batch: Batch,
    others: Sequence[Sequence[np.ndarray]],
    block: int,
    threads: int,
    sqnorms: bool,
) -> tuple[list[list[int]], list[int]]:
    """`exact_products` on the values themselves, in blocks of `block` coordinates."""
    kk, jj = batch.k, len(others)

    def chunk(c: Chunk) -> np.ndarray:
        acc = np.zeros((kk, jj + 1), dtype=np.int64)
        for t, a, b in _blocks(c, block):
            sx = _values(batch.rows((t, a, b)))
            if jj:
                sy = _values([y[t][a:b] for y in others])
                acc[:, :jj] += (sx @ sy.T).astype(np.int64)  # exact, see module docstring
            if sqnorms:
                acc[:, jj] += np.einsum("ij,ij->i", sx, sx).astype(np.int64)
        return acc

    total = sum(run_chunks(chunk, batch.chunks, threads), np.zeros((kk, jj + 1), np.int64))
    m = total.tolist()
    return [row[:jj] for row in m], [row[jj] for row in m] if sqnorms else []


def exact_cross(
    batch: Batch, others: Sequence[Sequence[np.ndarray]], threads: int = 1
) -> list[list[int]]:
    """<x_k, y_j> exactly (see `exact_products`)."""
    return exact_products(batch, others, threads)[0]


def exact_sqnorms(batch: Batch, threads: int = 1) -> list[int]:
    """||x_k||**2 exactly for every update, as Python ints (the Gram diagonal, in O(K P))."""
    return exact_products(batch, [], threads, sqnorms=True)[1]


def exact_gram(batch: Batch, threads: int = 1) -> list[list[int]]:
    """The exact K x K Gram matrix <x_i, x_j> of the updates, as Python ints."""
    kk = batch.k
    block = direct_block(batch)
    if block:

        def direct(c: Chunk) -> np.ndarray:
            acc = np.zeros((kk, kk), dtype=np.int64)
            for piece in _blocks(c, block):
                s = _values(batch.rows(piece))
                acc += (s @ s.T).astype(np.int64)  # exact, see module docstring
            return acc

        zero = np.zeros((kk, kk), np.int64)
        return sum(run_chunks(direct, batch.chunks, threads), zero).tolist()

    def chunk(c: Chunk) -> np.ndarray:
        acc = np.zeros((2 * kk, 2 * kk), dtype=np.int64)
        for block in _blocks(c):
            s = _halves(batch.rows(block))
            acc += (s @ s.T).astype(np.int64)  # A @ A.T: numpy calls syrk; exact as above
        return acc

    total = sum(run_chunks(chunk, batch.chunks, threads), np.zeros((2 * kk, 2 * kk), np.int64))
    m = [[int(v) for v in row] for row in total]
    return [
        [_combine(m[i][j], m[i][kk + j], m[kk + i][j], m[kk + i][kk + j]) for j in range(kk)]
        for i in range(kk)
    ]


def vector_sqnorm(flats: Sequence[np.ndarray]) -> int:
    """||v||**2 exactly for one int32 vector given per tensor (Python ints, block by block)."""
    acc = np.zeros(3, dtype=np.int64)  # |sums| <= P * 2**32 < 2**63
    for f in flats:
        for a in range(0, f.shape[0], DOT_BLOCK):
            hi, lo = _halves([f[a : a + DOT_BLOCK]])
            acc += np.array([hi @ hi, hi @ lo, lo @ lo]).astype(np.int64)
    hh, hl, ll = (int(v) for v in acc)
    return _combine(hh, hl, hl, ll)
