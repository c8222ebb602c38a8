"""Fixed point, validation order, rounding and exact reductions against Python-int references."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedray.aggregation import dots
from fedray.aggregation import fixedpoint as fp
from fedray.aggregation.base import (
    WEIGHT_ONE,
    BoundError,
    ClientDelta,
    DuplicateDeltaError,
    NonFiniteUpdateError,
    SampleCountError,
    TooFewUpdatesError,
    UpdateShapeError,
)
from fedray.aggregation.centered_clipping import CenteredClipping, CenteredClippingConfig

ULP = 2.0**-24
I32_MIN, I32_MAX = -(2**31), 2**31 - 1


# --- quantize / dequantize ---------------------------------------------------------------------
def test_quantize_scales_by_2_pow_24_and_rounds_half_to_even() -> None:
    x = np.array(
        [0.5, -0.25, 1.5 * ULP, 2.5 * ULP, -1.5 * ULP, -2.5 * ULP, 127.0], dtype=np.float64
    )
    q = fp.quantize({"w": x})["w"]
    assert q.dtype == np.int32
    assert q.tolist() == [2**23, -(2**22), 2, 2, -2, -2, 127 * 2**24]


def test_quantize_float32_is_exact_for_representable_values() -> None:
    x = np.array([1.0 / 3.0, -7.125, 1e-3], dtype=np.float32)
    q = fp.quantize({"w": x})["w"]
    assert q.tolist() == [round(Fraction(float(v)) * 2**24) for v in x]
    back = fp.dequantize({"w": q})["w"]
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, x, atol=ULP)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 128.0, -128.0, 1000.0, 128.0 - 2.0**-30])
def test_quantize_rejects_non_finite_and_out_of_range(bad: float) -> None:
    x = np.array([0.1, bad], dtype=np.float64)
    with pytest.raises(NonFiniteUpdateError):
        fp.quantize({"ok": np.zeros(3, np.float32), "w": x})


def test_quantize_rejects_non_float_input() -> None:
    with pytest.raises(UpdateShapeError):
        fp.quantize({"w": np.arange(3)})


def test_dequantize_rejects_non_int32() -> None:
    with pytest.raises(UpdateShapeError):
        fp.dequantize({"w": np.zeros(3, np.int64)})


# --- validation order --------------------------------------------------------------------------
class _Exploding(np.ndarray):
    """An ndarray subclass that fails on any ufunc: proves validation ran no arithmetic."""

    def __array_ufunc__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("arithmetic on an unvalidated update")


SPEC = {"b": (2,), "w": (2, 3)}


def _good(key: bytes = b"k", n: int = 1) -> ClientDelta:
    return ClientDelta(key, {"b": np.zeros(2, np.int32), "w": np.ones((2, 3), np.int32)}, n)


def _with(tensors: dict[str, object], key: bytes = b"x", n: int = 1) -> ClientDelta:
    return ClientDelta(key, tensors, n)  # type: ignore[arg-type]


def test_validate_sorts_by_key() -> None:
    ups = [_good(b"c"), _good(b"a"), _good(b"b")]
    assert [u.key for u in fp.validate_updates(ups, SPEC)] == [b"a", b"b", b"c"]


@pytest.mark.parametrize(
    ("update", "error", "words"),
    [
        # names are checked before dtypes: a wrongly named float tensor reports the names
        (
            _with({"b": np.zeros(2, np.float32), "v": np.ones((2, 3), np.int32)}),
            UpdateShapeError,
            "tensors",
        ),
        (_with({"b": np.zeros(2, np.int32)}), UpdateShapeError, "tensors"),
        (_with([np.zeros(2, np.int32)]), UpdateShapeError, "map str names"),  # type: ignore[list-item]
        (
            _with({0: np.zeros(2, np.int32), "w": np.ones((2, 3), np.int32)}),
            UpdateShapeError,
            "map str names",
        ),
        # dtypes are checked before shapes: a float tensor of the wrong shape reports the dtype
        (
            _with({"b": np.full(5, np.nan, np.float32), "w": np.ones((2, 3), np.int32)}),
            UpdateShapeError,
            "float32",
        ),
        (
            _with({"b": np.zeros(2, np.int64), "w": np.ones((2, 3), np.int32)}),
            UpdateShapeError,
            "int64",
        ),
        (
            _with({"b": np.zeros(2, ">i4"), "w": np.ones((2, 3), np.int32)}),
            UpdateShapeError,
            "not int32",
        ),
        (_with({"b": [0, 0], "w": np.ones((2, 3), np.int32)}), UpdateShapeError, "list"),
        (
            _with({"b": np.zeros(2, np.int32).view(_Exploding), "w": np.ones((2, 3), np.int32)}),
            UpdateShapeError,
            "not int32",
        ),
        (
            _with({"b": np.zeros(2, np.int32), "w": np.ones((3, 2), np.int32)}),
            UpdateShapeError,
            "shape",
        ),
        (_with({"b": np.zeros(2, np.int32), "w": np.ones(6, np.int32)}), UpdateShapeError, "shape"),
        (_good(n=0), SampleCountError, "n_samples"),
        (_good(n=True), SampleCountError, "n_samples"),
        (_good(n=2.0), SampleCountError, "n_samples"),  # type: ignore[arg-type]
    ],
)
def test_validate_rejects_with_typed_error(update: ClientDelta, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        fp.validate_updates([_good(b"a"), update], SPEC)


def test_validate_rejects_empty_duplicates_and_sample_overflow() -> None:
    with pytest.raises(TooFewUpdatesError):
        fp.validate_updates([], SPEC)
    with pytest.raises(DuplicateDeltaError):
        fp.validate_updates([_good(b"a"), _good(b"b"), _good(b"a")], SPEC)
    with pytest.raises(SampleCountError, match="total"):
        fp.validate_updates([_good(b"a", 2**31), _good(b"b", 2**31)], SPEC)
    with pytest.raises(UpdateShapeError):
        fp.validate_updates([ClientDelta(b"", _good().tensors, 1)], SPEC)


def test_make_batch_uses_the_lowest_key_as_reference() -> None:
    odd = ClientDelta(b"b", {"w": np.zeros(4, np.int32)}, 1)
    with pytest.raises(UpdateShapeError):
        fp.make_batch([odd, _good(b"a")])


# --- rounding ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("num", "den", "want"),
    [
        (5, 2, 2),
        (7, 2, 4),
        (-5, 2, -2),
        (-7, 2, -4),
        (3, 2, 2),
        (-3, 2, -2),
        (1, 3, 0),
        (2, 3, 1),
        (-2, 3, -1),
        (0, 5, 0),
        (10, 4, 2),
        (14, 4, 4),
        (-10, 4, -2),
        (9, 1, 9),
    ],
)
def test_round_half_even_by_hand(num: int, den: int, want: int) -> None:
    assert fp.round_half_even(num, den) == want
    assert fp.div_round_half_even(np.array([num], np.int64), den).tolist() == [want]


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**62), 2**62), st.integers(1, 2**40))
def test_round_half_even_matches_fraction_rounding(num: int, den: int) -> None:
    want = round(Fraction(num, den))  # Python rounds Fractions half to even
    assert fp.round_half_even(num, den) == want
    assert int(fp.div_round_half_even(np.array([num], np.int64), den)[0]) == want


# --- exact reductions --------------------------------------------------------------------------
def _extreme_updates(k: int, size: int, seed: int) -> list[ClientDelta]:
    rng = np.random.default_rng(seed)
    ups = []
    for i in range(k):
        w = rng.integers(I32_MIN, I32_MAX, size=size, endpoint=True, dtype=np.int64).astype(
            np.int32
        )
        w[: 3 + i] = [I32_MIN, I32_MAX, -1, *([I32_MAX] * i)][: 3 + i]
        ups.append(ClientDelta(bytes([i + 1]), {"w": w, "z": w[:7].copy()}, 1))
    return ups


def _py(u: ClientDelta) -> list[int]:
    return [int(v) for name in sorted(u.tensors) for v in u.tensors[name].ravel()]


def test_exact_gram_norms_and_cross_match_python_ints_across_chunks() -> None:
    ups = _extreme_updates(3, 2 * fp.CHUNK + 5, seed=1)
    batch = fp.make_batch(ups)
    vecs = [_py(u) for u in batch.updates]
    want = [[sum(a * b for a, b in zip(x, y, strict=True)) for y in vecs] for x in vecs]
    assert want[0][0] > 2**70  # far beyond int64: the halves must be combined exactly
    for threads in (1, 2):
        assert dots.exact_gram(batch, threads) == want
        assert dots.exact_sqnorms(batch, threads) == [want[i][i] for i in range(3)]
        other = [list(batch.flats[2])]
        assert dots.exact_cross(batch, other, threads) == [[row[2]] for row in want]
    assert dots.vector_sqnorm(batch.flats[1]) == want[1][1]


def _bounded_updates(k: int, size: int, m: int, seed: int) -> list[ClientDelta]:
    """Values in [-m, m], each update holding both ends: the direct path's worst case."""
    rng = np.random.default_rng(seed)
    ups = []
    for i in range(k):
        w = rng.integers(-m, m, size=size, endpoint=True, dtype=np.int64)
        w[:2] = [-m, m]
        w = w.astype(np.int32)
        ups.append(ClientDelta(bytes([i + 1]), {"w": w, "z": w[:7].copy()}, 1))
    return ups


@pytest.mark.parametrize("m", [2**22 - 1, 2**15, 2**20 + 12345])
def test_exact_products_of_small_values_take_the_direct_path(m: int) -> None:
    """Values small enough for float64 blocks without halves: the same Python-int results."""
    ups = _bounded_updates(3, 2 * fp.CHUNK + 5, m, seed=m % 1000)
    batch = fp.make_batch(ups)
    assert dots.direct_block(batch) >= dots.MIN_DIRECT_BLOCK
    vecs = [_py(u) for u in batch.updates]
    want = [[sum(a * b for a, b in zip(x, y, strict=True)) for y in vecs] for x in vecs]
    for threads in (1, 2):
        assert dots.exact_gram(batch, threads) == want
        assert dots.exact_sqnorms(batch, threads) == [want[i][i] for i in range(3)]
        other = [list(batch.flats[2])]
        assert dots.exact_cross(batch, other, threads) == [[row[2]] for row in want]
        cross, norms = dots.exact_products(batch, other, threads, sqnorms=True)
        assert cross == [[row[2]] for row in want] and norms == [want[i][i] for i in range(3)]


def test_direct_block_bounds() -> None:
    """Block sums below 2**53 and totals below 2**63, else the halves (0)."""
    small = fp.make_batch(_bounded_updates(2, 100, 2**22, seed=1))
    assert dots.direct_block(small) == ((1 << 53) - 1) // 2**44  # 511
    zero = fp.make_batch([ClientDelta(b"z", {"w": np.zeros(5, np.int32)}, 1)])
    assert dots.direct_block(zero) == dots.DOT_BLOCK
    extreme = fp.make_batch(_extreme_updates(2, 100, seed=1))
    assert dots.direct_block(extreme) == 0  # |-2**31|: blocks of 1
    # a block of >= 256 fits, but 2**19 coordinates of |x| = 2**22 would overflow int64 sums
    wide = fp.make_batch(_bounded_updates(2, 2**19, 2**22, seed=2))
    assert dots.direct_block(wide) == 0
    narrower = fp.make_batch(_bounded_updates(2, 2**18, 2**22, seed=2))
    assert dots.direct_block(narrower) > 0
    # the other vectors count too
    assert dots.direct_block(small, [[np.array([I32_MIN] * 100, np.int32)] * 2]) == 0


def test_weighted_mean_by_hand_and_int64_bound() -> None:
    batch = fp.make_batch(
        [
            ClientDelta(b"a", {"w": np.array([1, 2, I32_MAX], np.int32)}, 1),
            ClientDelta(b"b", {"w": np.array([4, 7, I32_MAX], np.int32)}, 3),
        ]
    )
    # (1*1 + 3*4)/4 = 3.25 -> 3; (2 + 21)/4 = 5.75 -> 6; the int32 max stays exact.
    assert fp.weighted_mean(batch, [0, 1], [1, 3])["w"].tolist() == [3, 6, I32_MAX]
    # weights 2:6 reduce by their gcd to 1:3 -> same result
    assert fp.weighted_mean(batch, [0, 1], [2, 6])["w"].tolist() == [3, 6, I32_MAX]
    with pytest.raises(BoundError):
        fp.weighted_mean(batch, [0, 1], [2**32, 1])


def test_run_chunks_rejects_zero_threads() -> None:
    with pytest.raises(BoundError):
        fp.run_chunks(lambda c: c, [(0, 0, 1)], threads=0)


@pytest.mark.parametrize(
    ("middle", "scores"),
    [
        # squared distance 24: the median norm is isqrt(24) = 4 (sqrt 4.9 rounded down), so the
        # middle update itself is clipped to 4/sqrt(24) = 53509.1/2**16 and the far one to 4/10
        ([2, 2, 4], [WEIGHT_ONE, 53509, 26214]),
        # squared distance 25: exactly 5, nothing below the median is clipped, the far one to 5/10
        ([3, 4, 0], [WEIGHT_ONE, WEIGHT_ONE, 32768]),
    ],
)
def test_relative_radius_is_the_floor_square_root_of_the_median_norm(
    middle: list[int], scores: list[int]
) -> None:
    """Centered clipping's relative radius (radius 1.0 x the median distance to the zero centre)
    takes the floor square root of the exact squared norms, at the boundary of a perfect square."""
    ups = [
        ClientDelta(b"a", {"w": np.array([0, 0, 0], np.int32)}, 1),
        ClientDelta(b"b", {"w": np.array(middle, np.int32)}, 1),
        ClientDelta(b"c", {"w": np.array([0, 6, 8], np.int32)}, 1),  # squared norm 100
    ]
    result = CenteredClipping(CenteredClippingConfig(radius=1.0, relative=True)).aggregate(ups)
    assert [v.score for v in result.verdicts] == scores
