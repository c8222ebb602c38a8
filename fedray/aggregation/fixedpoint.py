"""Fixed-point conversion, update validation and exact integer reductions.

Owns: float <-> int32 fixed point (`quantize`, `dequantize`), the checks every update passes before
any arithmetic (`validate_updates`), the `Batch` view that strategies reduce over, integer rounding
(`div_round_half_even`), sample-weighted sums with proven int64 bounds (`weighted_mean`) and sorted
coordinate blocks for order statistics. Exact dot products live in `dots.py`.

Determinism: every result here is an exact integer (or an exactly rounded one), so it cannot depend
on summation order, chunking or thread count. Work is cut into fixed chunks of `CHUNK` coordinates
that never straddle tensors; chunks may run on a thread pool (numpy and BLAS release the GIL) and
their partial results are combined exactly in plan order.

Ignores: hashing, transport, which rule uses which reduction.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from fedray.aggregation.base import (
    FRAC_BITS,
    MAX_TOTAL_SAMPLES,
    MAX_UPDATES,
    SCALE,
    BoundError,
    ClientDelta,
    DuplicateDeltaError,
    NonFiniteUpdateError,
    SampleCountError,
    Tensors,
    TooFewUpdatesError,
    UpdateShapeError,
)

T = TypeVar("T")
Spec = Mapping[str, tuple[int, ...]]
Chunk = tuple[int, int, int]  # (tensor index, start, stop) in the flattened tensor

CHUNK = 1 << 14
"""Coordinates per unit of work (a (CHUNK, 32) int32 block is 2 MiB). Any value gives the same bytes."""
SUM_CHUNK = 1 << 15
"""Coordinates per unit of the weighted sums: an int64 accumulator of 256 KiB stays in L2, and
fewer numpy calls per coordinate than CHUNK (K adds per chunk dominate at 1M parameters)."""
COMPILED_MIN_VALUES = 1 << 24
"""Smallest weighted mean (members x coordinates, 16M: 64 MB of updates) handed to the compiled
loops (`kernels.py`). Loading numba costs a process about 0.35 s and 130 MB once and saves about
0.4 ns a value per aggregation, so it pays within some 50 rounds here and no sooner below. Either
path gives the same bytes."""
COMPILED_CHUNK = 1 << 16
"""Coordinates per unit of work of the compiled kernel (the unit threads share)."""
ORDER_CHUNK = 1 << 12
"""Coordinates per unit of the order statistics: a sorted (ORDER_CHUNK, 32) int32 block (512 KiB)
and its stacked source stay in L2 while they are transposed and sorted."""
MAX_PARAMS = (1 << 31) - 1
"""Most coordinates per update: keeps the int64 sums of 16-bit half products below 2**63."""
RANGE = 1 << (31 - FRAC_BITS)
"""Exclusive bound on |x| for float inputs to `quantize` (128)."""
INT32 = np.dtype(np.int32)


# --- float <-> fixed point --------------------------------------------------------------------
def quantize(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float arrays -> int32 fixed point (value * 2**24, rounded half to even).

    Every tensor is checked for NaN, inf and |x| >= 128 before anything is converted, and a value
    that rounds up to +128 is rejected too: all raise `NonFiniteUpdateError`.
    """
    for name, a in tensors.items():
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            raise UpdateShapeError(f"quantize: tensor {name!r} must be a float numpy array")
        if not np.isfinite(a).all():
            raise NonFiniteUpdateError(f"tensor {name!r} holds NaN or infinite values")
        if a.size and float(np.abs(a).max()) >= RANGE:
            raise NonFiniteUpdateError(f"tensor {name!r} has |x| >= {RANGE}, outside fixed point")
    out: dict[str, np.ndarray] = {}
    for name, a in tensors.items():
        # float32/float64 * 2**24 is exact (no overflow below 128) and rint rounds half to even.
        q = np.rint(a.astype(np.float64) * SCALE)
        if q.size and float(q.max()) > np.iinfo(np.int32).max:
            raise NonFiniteUpdateError(f"tensor {name!r} rounds to +{RANGE}, outside fixed point")
        out[name] = q.astype(np.int32)
    return out


def dequantize(
    tensors: Mapping[str, np.ndarray], dtype: type = np.float32
) -> dict[str, np.ndarray]:
    """int32 fixed point -> float arrays (q * 2**-24, one rounding to `dtype`)."""
    out: dict[str, np.ndarray] = {}
    for name, q in tensors.items():
        if not isinstance(q, np.ndarray) or q.dtype != INT32:
            raise UpdateShapeError(f"dequantize: tensor {name!r} must be an int32 numpy array")
        # cast then scale by 2**-24 (exact): one correctly rounded conversion to `dtype`
        out[name] = np.multiply(q, 1.0 / SCALE, dtype=dtype)
    return out


def spec_of(tensors: Tensors) -> dict[str, tuple[int, ...]]:
    """The reference spec (name -> shape) of a model or update."""
    return {name: tuple(int(d) for d in a.shape) for name, a in tensors.items()}


# --- validation -------------------------------------------------------------------------------
def validate_updates(
    updates: Sequence[ClientDelta], reference_spec: Spec
) -> tuple[ClientDelta, ...]:
    """Sort updates by key and check them, before any arithmetic, in this order: at least one
    update, no duplicate keys, then per update its sample count, tensor names, dtypes (plain
    int32 numpy arrays), shapes; finally the round's total sample count."""
    if not updates:
        raise TooFewUpdatesError("no updates to aggregate")
    if len(updates) > MAX_UPDATES:
        raise BoundError(f"{len(updates)} updates exceed MAX_UPDATES={MAX_UPDATES}")
    for u in updates:
        if not isinstance(u, ClientDelta) or not isinstance(u.key, bytes) or not u.key:
            raise UpdateShapeError("every update must be an ClientDelta with a non-empty bytes key")
    ordered = tuple(sorted(updates, key=lambda u: u.key))
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        if prev.key == cur.key:
            raise DuplicateDeltaError(f"key {cur.key.hex()} appears twice")
    names = sorted(reference_spec)
    if sum(math.prod(reference_spec[n]) for n in names) > MAX_PARAMS:
        raise BoundError(f"model has more than MAX_PARAMS={MAX_PARAMS} coordinates")
    for u in ordered:
        who = u.key.hex()[:16]
        n = u.n_samples
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SampleCountError(f"update {who}: n_samples must be a positive int, got {n!r}")
        if not isinstance(u.tensors, Mapping) or not all(isinstance(t, str) for t in u.tensors):
            raise UpdateShapeError(f"update {who}: tensors must map str names to arrays")
        if sorted(u.tensors) != names:  # rule: tensor names match the model
            raise UpdateShapeError(f"update {who}: tensors {sorted(u.tensors)} != model {names}")
        for name in names:  # rule: plain numpy int32 (native byte order) only
            a = u.tensors[name]
            if type(a) is not np.ndarray or a.dtype != INT32:
                kind = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
                raise UpdateShapeError(f"update {who}: tensor {name!r} is {kind}, not int32")
        for name in names:  # rule: shapes match the model
            if tuple(u.tensors[name].shape) != tuple(reference_spec[name]):
                raise UpdateShapeError(
                    f"update {who}: tensor {name!r} has shape {u.tensors[name].shape}, "
                    f"model has {tuple(reference_spec[name])}"
                )
    if sum(u.n_samples for u in ordered) > MAX_TOTAL_SAMPLES:
        raise SampleCountError(f"total n_samples exceeds MAX_TOTAL_SAMPLES={MAX_TOTAL_SAMPLES}")
    return ordered


@dataclass(frozen=True)
class Batch:
    """Validated updates in key order, each flattened per tensor (views, no copies)."""

    updates: tuple[ClientDelta, ...]
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    flats: tuple[tuple[np.ndarray, ...], ...]  # flats[k][t]: update k, tensor t, 1-D int32

    @property
    def k(self) -> int:
        return len(self.updates)

    @property
    def keys(self) -> tuple[bytes, ...]:
        return tuple(u.key for u in self.updates)

    @functools.cached_property
    def chunks(self) -> tuple[Chunk, ...]:
        """The fixed work plan: every tensor cut into pieces of at most CHUNK coordinates."""
        return self.plan(CHUNK)

    @functools.cached_property
    def max_abs(self) -> int:
        """The largest |value| over every update (a Python int: |-2**31| does not fit int32)."""
        return max_abs(self.flats)

    def plan(self, size: int) -> tuple[Chunk, ...]:
        """Every tensor cut into pieces of at most `size` coordinates, in tensor order. Only
        per-coordinate reductions may pick their own size (their bytes cannot depend on it)."""
        plan: list[Chunk] = []
        for t, shape in enumerate(self.shapes):
            n = math.prod(shape)
            plan.extend((t, a, min(a + size, n)) for a in range(0, n, size))
        return tuple(plan)

    def rows(self, chunk: Chunk, members: Sequence[int] | None = None) -> list[np.ndarray]:
        """The chunk's slice of each update (or of `members`), in key order."""
        t, a, b = chunk
        idx = range(self.k) if members is None else members
        return [self.flats[i][t][a:b] for i in idx]

    def outputs(self, dtype: type = np.int32) -> list[np.ndarray]:
        """Uninitialised flat output arrays, one per tensor, that chunk functions fill."""
        return [np.empty(math.prod(s), dtype=dtype) for s in self.shapes]

    def to_tensors(self, flats: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        return {n: f.reshape(s) for n, s, f in zip(self.names, self.shapes, flats, strict=True)}


def max_abs(flats: Sequence[Sequence[np.ndarray]]) -> int:
    """The largest |value| over every array of every group, as a Python int."""
    m = 0
    for arrays in flats:
        for a in arrays:
            if a.size:
                m = max(m, -int(a.min()), int(a.max()))
    return m


def make_batch(updates: Sequence[ClientDelta], reference_spec: Spec | None = None) -> Batch:
    """Validate (against `reference_spec`, else the spec of the lowest-key update) and flatten."""
    if reference_spec is None:
        if not updates:
            raise TooFewUpdatesError("no updates to aggregate")
        first = min(updates, key=lambda u: u.key if isinstance(u.key, bytes) else b"")
        reference_spec = spec_of(first.tensors)
    ordered = validate_updates(updates, reference_spec)
    names = tuple(sorted(reference_spec))
    return Batch(
        updates=ordered,
        names=names,
        shapes=tuple(tuple(reference_spec[n]) for n in names),
        flats=tuple(tuple(u.tensors[n].reshape(-1) for n in names) for u in ordered),
    )


def check_center(batch: Batch, center: Sequence[np.ndarray]) -> None:
    """A carried-over center (strategy state) must be flat int32 of the model's per-tensor sizes."""
    for name, shape, c in zip(batch.names, batch.shapes, center, strict=True):
        if type(c) is not np.ndarray or c.dtype != INT32 or c.shape != (math.prod(shape),):
            raise UpdateShapeError(f"state tensor {name!r} does not match the model")


# --- threads ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fedray-agg")


def run_chunks(fn: Callable[[Chunk], T], chunks: Sequence[Chunk], threads: int = 1) -> list[T]:
    """`fn` over every chunk, results in plan order. Chunks write disjoint outputs and return
    exact partial results, so the outcome is independent of `threads`."""
    if threads < 1:
        raise BoundError(f"threads must be >= 1, got {threads}")
    if threads == 1 or len(chunks) == 1:
        return [fn(c) for c in chunks]
    return list(_pool(threads).map(fn, chunks))


# --- rounding ---------------------------------------------------------------------------------
def div_round_half_even(num: np.ndarray, den: int) -> np.ndarray:
    """num / den for int64 `num` and 0 < den < 2**62, rounded to the nearest integer, ties to
    even. Sign-symmetric and unbiased; this is the one rounding rule of every mean here."""
    q = np.floor_divide(num, den)
    r = num - q * den  # 0 <= r < den, exact
    twice = 2 * r
    q += (twice > den) | ((twice == den) & (q & 1 == 1))
    return q


def round_half_even(num: int, den: int) -> int:
    """Python-int twin of `div_round_half_even` (den > 0)."""
    q, r = divmod(num, den)
    return q + (2 * r > den or (2 * r == den and q & 1 == 1))


# --- weighted sums ----------------------------------------------------------------------------
def weighted_sum(rows: Sequence[np.ndarray], weights: Sequence[int]) -> np.ndarray:
    """Exact int64 sum of w_k * rows[k] over int32 rows; the caller proves sum|w_k| * 2**31 < 2**63."""
    acc = np.zeros(rows[0].shape[0], dtype=np.int64)
    tmp = np.empty_like(acc) if any(w != 1 for w in weights) else acc
    for r, w in zip(rows, weights, strict=True):
        if w == 1:
            np.add(acc, r, out=acc, dtype=np.int64)
        elif w != 0:
            np.multiply(r, w, out=tmp, dtype=np.int64)
            acc += tmp
    return acc


def weighted_mean(
    batch: Batch, members: Sequence[int], weights: Sequence[int], threads: int = 1
) -> dict[str, np.ndarray]:
    """sum_k w_k x_k / sum_k w_k over `members` (indices in key order), rounded half to even.

    Weights are reduced by their gcd first (same rational, smaller numbers; equal weights take the
    plain int64 add path). Bound: sum(w) * 2**31 < 2**63, checked. The mean of int32 values stays
    in [min, max], so it fits int32. Batches of COMPILED_MIN_VALUES or more run the compiled
    kernel (`kernels.py`), smaller ones numpy; both are exact, so the bytes are the same.
    """
    if not members or len(members) != len(weights) or any(w < 0 for w in weights):
        raise BoundError("weighted_mean needs one non-negative weight per member")
    g = math.gcd(*weights)
    if g == 0:
        raise BoundError("weighted_mean: all weights are zero")
    ws = [w // g for w in weights]
    den = sum(ws)
    if den > MAX_TOTAL_SAMPLES:
        raise BoundError(f"sum of reduced weights {den} exceeds {MAX_TOTAL_SAMPLES}")
    outs = batch.outputs()
    if len(members) * sum(o.size for o in outs) >= COMPILED_MIN_VALUES:
        from fedray.aggregation import kernels  # numba: imported by large aggregations only

        tensor_rows = [
            kernels.readonly_rows([batch.flats[i][t] for i in members]) for t in range(len(outs))
        ]

        def compiled(c: Chunk) -> None:
            t, a, b = c
            kernels.weighted_mean_into(tensor_rows[t], ws, den, outs[t], a, b)

        run_chunks(compiled, batch.plan(COMPILED_CHUNK), threads)
        return batch.to_tensors(outs)

    def chunk(c: Chunk) -> None:
        t, a, b = c
        outs[t][a:b] = div_round_half_even(weighted_sum(batch.rows(c, members), ws), den)

    run_chunks(chunk, batch.plan(SUM_CHUNK), threads)
    return batch.to_tensors(outs)


# --- order statistics -------------------------------------------------------------------------
def stacked(batch: Batch, chunk: Chunk) -> np.ndarray:
    """(K, c) int32: the chunk's slice of every update, one contiguous row each (one copy)."""
    return np.stack(batch.rows(chunk))


def sorted_block(batch: Batch, chunk: Chunk, rows: np.ndarray | None = None) -> np.ndarray:
    """(c, K) int32: each coordinate's K values sorted ascending (`rows`: the chunk's `stacked`
    block, if the caller has it). The (coordinates, updates) layout lets numpy sort many short
    contiguous rows with SIMD networks; sorting values (not indices) has no ties to break, so
    the result is unique. The block is stacked row by row and transposed in one copy: writing
    it column by column (a strided store per update) took 4x as long as the sort itself."""
    block = (stacked(batch, chunk) if rows is None else rows).T.copy()
    block.sort(axis=1)
    return block
