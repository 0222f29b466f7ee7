"""Tests for accelsim.core.fixedpoint against an arbitrary-precision integer model.

The model below is written from the mathematical meaning of each operation
(exact rationals, Python ints), not from gemmlowp's bit tricks:

* SaturatingRoundingDoublingHighMul(a, b) = round(a*b / 2**31) with ties toward
  +infinity, clamped to int32 (only INT32_MIN * INT32_MIN overflows).
* RoundingDivideByPOT(x, e) = round(x / 2**e), ties away from zero.
* QuantizeMultiplier(m): m = q * 2**shift with q in [0.5, 1), found exactly.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from accelsim.core import fixedpoint as fp

I32_MIN = -(2**31)
I32_MAX = 2**31 - 1

FAST = settings(max_examples=150, deadline=None)


# --------------------------------------------------------------------------
# Arbitrary-precision reference model
# --------------------------------------------------------------------------


def ref_srdhm(a: int, b: int) -> int:
    value = math.floor(Fraction(a * b, 2**31) + Fraction(1, 2))
    return min(max(value, I32_MIN), I32_MAX)


def ref_rdbpot(x: int, e: int) -> int:
    q = Fraction(x, 2**e)
    magnitude = math.floor(abs(q) + Fraction(1, 2))
    return magnitude if x >= 0 else -magnitude


def ref_wrap32(v: int) -> int:
    v %= 2**32
    return v - 2**32 if v >= 2**31 else v


def ref_mbqm(x: int, multiplier: int, shift: int) -> int:
    left, right = (shift, 0) if shift > 0 else (0, -shift)
    return ref_rdbpot(ref_srdhm(ref_wrap32(x * 2**left), multiplier), right)


def ref_mbqm_int64(x: int, multiplier: int, shift: int) -> int:
    if multiplier < 0x7FFF0000:
        reduced = math.floor(Fraction(multiplier, 2**16) + Fraction(1, 2))
    else:
        reduced = 0x7FFF
    value = math.floor(Fraction(x * reduced, 2 ** (15 - shift)) + Fraction(1, 2))
    return ref_wrap32(value)


def ref_quantize_multiplier(m: float) -> tuple[int, int]:
    if m == 0:
        return 0, 0
    exact = Fraction(m)
    shift = exact.numerator.bit_length() - exact.denominator.bit_length()
    while exact >= Fraction(2) ** shift:
        shift += 1
    while exact < Fraction(2) ** (shift - 1):
        shift -= 1
    scaled = exact * 2**31 / Fraction(2) ** shift  # in [2**30, 2**31)
    q_fixed = math.floor(scaled + Fraction(1, 2))  # scaled > 0: half away from zero
    if q_fixed == 2**31:
        q_fixed, shift = q_fixed // 2, shift + 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return I32_MAX, 30
    return q_fixed, shift


def mbqm_of(x, real_multiplier):
    return fp.multiply_by_quantized_multiplier(x, *fp.quantize_multiplier(real_multiplier))


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------

EDGES = [I32_MIN, I32_MIN + 1, -(2**30), -1, 0, 1, 2**30, I32_MAX - 1, I32_MAX]
int32s = st.one_of(st.sampled_from(EDGES), st.integers(I32_MIN, I32_MAX))
exponents = st.integers(0, 31)
shifts = st.integers(-31, 30)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)
positive_reals = st.floats(min_value=1e-12, max_value=2.0**31, allow_nan=False)
# Multipliers whose q * 2**31 ends in exactly .5, exercising the half-away-from-zero tie.
tie_reals = st.builds(
    lambda k, s: math.ldexp(k + 0.5, s - 31), st.integers(2**30, 2**31 - 1), st.integers(-20, 20)
)


def int32_arrays(shape):
    return hnp.arrays(np.int32, shape, elements=int32s)


# --------------------------------------------------------------------------
# Fixed vectors
# --------------------------------------------------------------------------


def test_rounding_divide_by_pot_vectors():
    assert fp.rounding_divide_by_pot(-12, 3) == -2
    assert fp.rounding_divide_by_pot(12, 3) == 2
    assert fp.rounding_divide_by_pot(-11, 3) == -1


def test_srdhm_overflow_vector():
    assert fp.saturating_rounding_doubling_high_mul(I32_MIN, I32_MIN) == 2147483647


@pytest.mark.parametrize(
    "m, expected",
    [
        (0.0037, (2034096511, -8)),
        (0.001, (1099511628, -9)),
        (0.1234567, (2120969956, -3)),
        (0.5, (1073741824, 0)),
        (1.5, (1610612736, 1)),
    ],
)
def test_quantize_multiplier_vectors(m, expected):
    assert fp.quantize_multiplier(m) == expected


def test_quantize_multiplier_edges():
    assert fp.quantize_multiplier(0.0) == (0, 0)
    assert fp.quantize_multiplier(2.0**-40) == (0, 0)  # shift < -31 flushes to zero
    assert fp.quantize_multiplier(2.0**-32) == (2**30, -31)
    assert fp.quantize_multiplier(1.0) == (2**30, 1)
    assert fp.quantize_multiplier(1 - 2**-40) == (2**30, 1)  # q_fixed == 2**31 case
    assert fp.quantize_multiplier(0.5 + 2**-32) == (2**30 + 1, 0)  # tie rounds away from zero
    assert fp.quantize_multiplier(1 - 2**-32) == (2**30, 1)  # tie up to 2**31, then halved
    assert fp.quantize_multiplier(2.0**31) == (I32_MAX, 30)  # shift > 30 saturates
    for bad in (-0.5, math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError):
            fp.quantize_multiplier(bad)


def test_mbqm_vectors():
    assert mbqm_of(-7, 0.5) == -3
    assert mbqm_of(-5, 0.5) == -2
    assert mbqm_of(7, 0.5) == 4
    assert mbqm_of(1000, 0.0037) == 4


def test_double_rounding_differs_from_single_rounding():
    x, m = 109225, 0.309493814
    assert mbqm_of(x, m) == 33805
    assert round(x * m) == 33804
    # Single rounding on the quantized multiplier (TFLITE_SINGLE_ROUNDING) also gives 33804.
    qm, shift = fp.quantize_multiplier(m)
    assert math.floor(Fraction(x * qm, 2 ** (31 - shift)) + Fraction(1, 2)) == 33804


def test_left_shift_wraps_like_int32():
    # x * 2**1 overflows int32: TFLite's int32 product wraps (2**30 * 2 -> INT32_MIN).
    assert fp.multiply_by_quantized_multiplier(2**30, 2**30, 1) == ref_srdhm(I32_MIN, 2**30)
    assert fp.multiply_by_quantized_multiplier(2**30, 2**30, 1) == -(2**30)


def test_return_types():
    scalar = fp.multiply_by_quantized_multiplier(5, 2**30, 0)
    assert isinstance(scalar, np.int32)
    arr = fp.multiply_by_quantized_multiplier(np.array([5, 6]), 2**30, 0)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.int32 and arr.shape == (2,)
    assert isinstance(fp.saturating_rounding_doubling_high_mul(3, 4), np.int32)
    assert isinstance(fp.rounding_divide_by_pot(np.int32(3), 1), np.int32)
    assert isinstance(fp.multiply_by_quantized_multiplier_int64(3, 2**30, 0), np.int32)
    mult, shift = fp.quantize_multiplier_array(np.array([[0.5, 0.0037]]))
    assert mult.dtype == np.int32 and shift.dtype == np.int32 and mult.shape == (1, 2)
    assert mult.tolist() == [[1073741824, 2034096511]] and shift.tolist() == [[0, -8]]


def test_argument_validation():
    with pytest.raises(ValueError):
        fp.rounding_divide_by_pot(1, 32)
    with pytest.raises(ValueError):
        fp.rounding_divide_by_pot(1, -1)
    with pytest.raises(ValueError):
        fp.saturating_rounding_doubling_high_mul(2**31, 1)
    with pytest.raises(ValueError):
        fp.multiply_by_quantized_multiplier(np.array([1], dtype=np.int64) << 40, 2**30, 0)
    with pytest.raises(ValueError):
        fp.multiply_by_quantized_multiplier(1, 2**30, 31)
    with pytest.raises(ValueError):
        fp.multiply_by_quantized_multiplier_int64(2**47, 2**30, 0)
    with pytest.raises(ValueError):
        fp.multiply_by_quantized_multiplier_int64(1, -1, 0)
    with pytest.raises(ValueError):
        fp.multiply_by_quantized_multiplier_int64(1, 2**30, 8)
    with pytest.raises(TypeError):
        fp.rounding_divide_by_pot(1.5, 1)


# --------------------------------------------------------------------------
# Properties against the model, full int32 range
# --------------------------------------------------------------------------


@FAST
@given(int32s, int32s)
def test_srdhm_matches_model(a, b):
    assert int(fp.saturating_rounding_doubling_high_mul(a, b)) == ref_srdhm(a, b)


@FAST
@given(int32s, exponents)
def test_rdbpot_matches_model(x, e):
    assert int(fp.rounding_divide_by_pot(x, e)) == ref_rdbpot(x, e)


@FAST
@given(int32s, int32s, shifts)
def test_mbqm_matches_model(x, multiplier, shift):
    assert int(fp.multiply_by_quantized_multiplier(x, multiplier, shift)) == ref_mbqm(
        x, multiplier, shift
    )


@FAST
@given(
    st.integers(-(2**47), 2**47 - 1),
    st.one_of(st.sampled_from([0, 1, 0x7FFEFFFF, 0x7FFF0000, I32_MAX]), st.integers(0, I32_MAX)),
    st.integers(-31, 7),
)
def test_mbqm_int64_matches_model(x, multiplier, shift):
    got = int(fp.multiply_by_quantized_multiplier_int64(x, multiplier, shift))
    assert got == ref_mbqm_int64(x, multiplier, shift)


@FAST
@given(st.one_of(positive_reals, tie_reals, st.floats(min_value=0.0, max_value=1e300)))
def test_quantize_multiplier_matches_model(m):
    qm, shift = fp.quantize_multiplier(m)
    assert (qm, shift) == ref_quantize_multiplier(m)
    assert isinstance(qm, int) and isinstance(shift, int)
    if 2.0**-31 <= m < 2.0**30:
        assert 2**30 <= qm <= I32_MAX
        assert abs(Fraction(qm, 2**31) * Fraction(2) ** shift - Fraction(m)) <= Fraction(
            m
        ) * Fraction(1, 2**31)


@FAST
@given(
    st.integers(-(2**23), 2**23),
    st.floats(min_value=2.0**-20, max_value=0.99, allow_nan=False),
)
def test_mbqm_close_to_real_product(x, m):
    # Double rounding is within one unit of the exact real product when nothing overflows.
    assert abs(int(mbqm_of(x, m)) - x * m) <= 1.0 + 1e-6


# --------------------------------------------------------------------------
# Vectorised paths: arrays, broadcasting, per-channel, equal to scalar path
# --------------------------------------------------------------------------


@FAST
@given(st.data())
def test_array_paths_match_model_and_scalar_path(data):
    shape = data.draw(shapes)
    channels = shape[-1]
    x = data.draw(int32_arrays(shape))
    b = data.draw(int32_arrays(shape))
    e = data.draw(hnp.arrays(np.int32, (channels,), elements=exponents))
    mult = data.draw(int32_arrays((channels,)))
    shift = data.draw(hnp.arrays(np.int32, (channels,), elements=shifts))

    srdhm = fp.saturating_rounding_doubling_high_mul(x, b)
    rdbpot = fp.rounding_divide_by_pot(x, e)
    mbqm = fp.multiply_by_quantized_multiplier(x, mult, shift)
    for out in (srdhm, rdbpot, mbqm):
        assert isinstance(out, np.ndarray) and out.dtype == np.int32 and out.shape == shape

    for idx in np.ndindex(shape):
        xi, bi, c = int(x[idx]), int(b[idx]), idx[-1]
        ei, mi, si = int(e[c]), int(mult[c]), int(shift[c])
        assert srdhm[idx] == ref_srdhm(xi, bi) == fp.saturating_rounding_doubling_high_mul(xi, bi)
        assert rdbpot[idx] == ref_rdbpot(xi, ei) == fp.rounding_divide_by_pot(xi, ei)
        assert mbqm[idx] == ref_mbqm(xi, mi, si) == fp.multiply_by_quantized_multiplier(xi, mi, si)


@FAST
@given(st.data())
def test_int64_array_path_matches_model_and_scalar_path(data):
    shape = data.draw(shapes)
    channels = shape[-1]
    x = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(-(2**47), 2**47 - 1)))
    mult = data.draw(hnp.arrays(np.int32, (channels,), elements=st.integers(0, I32_MAX)))
    shift = data.draw(hnp.arrays(np.int32, (channels,), elements=st.integers(-31, 7)))
    out = fp.multiply_by_quantized_multiplier_int64(x, mult, shift)
    assert isinstance(out, np.ndarray) and out.dtype == np.int32 and out.shape == shape
    for idx in np.ndindex(shape):
        xi, mi, si = int(x[idx]), int(mult[idx[-1]]), int(shift[idx[-1]])
        assert out[idx] == ref_mbqm_int64(xi, mi, si)
        assert out[idx] == fp.multiply_by_quantized_multiplier_int64(xi, mi, si)


@FAST
@given(hnp.arrays(np.float64, shapes, elements=positive_reals))
def test_quantize_multiplier_array_matches_scalar(ms):
    mult, shift = fp.quantize_multiplier_array(ms)
    assert mult.shape == shift.shape == ms.shape
    for idx in np.ndindex(ms.shape):
        assert (int(mult[idx]), int(shift[idx])) == fp.quantize_multiplier(float(ms[idx]))


def test_per_channel_end_to_end():
    scales = np.array([0.5, 0.0037, 1.5, 0.309493814])
    mult, shift = fp.quantize_multiplier_array(scales)
    acc = np.array([[-7, 1000, 3, 109225], [7, -1000, -3, -109225]], dtype=np.int32)
    out = fp.multiply_by_quantized_multiplier(acc, mult, shift)
    expected = [
        [ref_mbqm(int(v), int(mult[c]), int(shift[c])) for c, v in enumerate(row)] for row in acc
    ]
    assert out.tolist() == expected
    assert out[0].tolist() == [-3, 4, 5, 33805]
