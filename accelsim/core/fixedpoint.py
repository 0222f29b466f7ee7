"""gemmlowp / TensorFlow Lite fixed-point requantization arithmetic, bit-exact.

Vectorised over numpy integer arrays; Python ints and numpy scalars are
accepted too.  Every function returns ``numpy.int32`` values: an ndarray when
any argument is an array, a ``numpy.int32`` scalar when all are scalars.
Arguments broadcast against each other with numpy's rules, so a per-channel
``multiplier`` / ``shift`` of shape ``(C,)`` applies along the last axis of
``x``.  All arithmetic is done in int64 with operand ranges checked first, so
no intermediate can overflow; an out-of-range argument raises ``ValueError``.

References (the default, double-rounding TFLite build, i.e.
``TFLITE_SINGLE_ROUNDING == 0``):

* gemmlowp ``fixedpoint/fixedpoint.h``: ``SaturatingRoundingDoublingHighMul``
  (ARM NEON ``VQRDMULH``) and ``RoundingDivideByPOT``.
* TFLite ``tensorflow/lite/kernels/internal/quantization_util.cc``:
  ``QuantizeMultiplier``.
* TFLite ``tensorflow/lite/kernels/internal/common.cc`` (``common.h`` in older
  releases): both ``MultiplyByQuantizedMultiplier`` overloads.

Overflow of ``x * (1 << left_shift)``: TFLite computes this in ``int32_t`` and
marks the function ``TFLITE_NO_SANITIZE_INTEGER_OVERFLOW`` (suppressing
UBSan's signed-overflow check), i.e. it relies on the two's-complement
wrap-around that GCC and Clang generate.  :func:`multiply_by_quantized_multiplier`
reproduces that wrap (it does not saturate).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "INT32_MIN",
    "INT32_MAX",
    "quantize_multiplier",
    "quantize_multiplier_array",
    "saturating_rounding_doubling_high_mul",
    "rounding_divide_by_pot",
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_int64",
]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
_INT48_MIN = -(1 << 47)
_INT48_MAX = (1 << 47) - 1


def _int_array(value: ArrayLike, name: str, lo: int, hi: int) -> np.ndarray:
    """``value`` as an int64 array, after checking it is integral and in [lo, hi]."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        if arr.dtype == object and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr.flat
        ):
            if arr.size and not all(lo <= int(v) <= hi for v in arr.flat):
                raise ValueError(f"{name} must lie in [{lo}, {hi}]")
            return arr.astype(np.int64)
        raise TypeError(f"{name} must be an integer or an integer array, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        raise ValueError(
            f"{name} must lie in [{lo}, {hi}], found values in [{int(arr.min())}, {int(arr.max())}]"
        )
    return arr.astype(np.int64)


def _out(result: np.ndarray, *args: ArrayLike) -> np.ndarray | np.int32:
    """Cast to int32 (values are already in range); a numpy scalar for all-scalar input."""
    result = np.asarray(result).astype(np.int32)
    if all(np.ndim(a) == 0 for a in args):
        return result[()]
    return result


def _wrap_int32(v: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to the int32 range (still int64)."""
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``m ~= multiplier * 2**-31 * 2**shift``.

    ``multiplier`` is in ``[2**30, 2**31 - 1]`` (or 0) and ``shift`` in
    ``[-31, 30]``.  Steps: ``q, shift = frexp(m)``; ``q_fixed = round(q * 2**31)``
    with ``TfLiteRound`` (``std::round``, half away from zero); if
    ``q_fixed == 2**31`` halve it and increment ``shift``; if ``shift < -31``
    flush to ``(0, 0)``.  Multipliers so large that ``shift > 30`` saturate to
    ``(2**31 - 1, 30)`` as in TFLite's single-rounding build; the default
    double-rounding build leaves ``shift`` unclamped there, but ``1 << shift``
    in its ``int32_t`` left shift would then be undefined, so clamping is the
    only well-defined choice (no real requantization scale comes near 2**30).

    Unlike TFLite (which accepts negative multipliers in the double-rounding
    build), negative, NaN and infinite ``m`` raise ``ValueError``.
    """
    m = float(m)
    if not math.isfinite(m) or m < 0.0:
        raise ValueError(f"quantize_multiplier needs a finite m >= 0, got {m!r}")
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    scaled = q * (1 << 31)  # exact: q has 53 significant bits
    q_fixed = math.floor(scaled)
    if scaled - q_fixed >= 0.5:  # half away from zero (scaled > 0)
        q_fixed += 1
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return int(q_fixed), int(shift)


def quantize_multiplier_array(ms: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel :func:`quantize_multiplier` (TFLite ``QuantizeMultiplierArray``).

    Returns ``(multipliers, shifts)``, two int32 arrays of ``ms``'s shape.
    """
    ms = np.asarray(ms, dtype=np.float64)
    mult = np.empty(ms.shape, dtype=np.int32)
    shift = np.empty(ms.shape, dtype=np.int32)
    for idx, m in np.ndenumerate(ms):
        mult[idx], shift[idx] = quantize_multiplier(m)
    return mult, shift


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` (NEON ``VQRDMULH``) on int32.

    ``(a*b + nudge) / 2**31`` truncated toward zero, with ``nudge = 2**30`` if
    ``a*b >= 0`` else ``1 - 2**30``; ``a == b == INT32_MIN`` gives ``INT32_MAX``.
    """
    a64 = _int_array(a, "a", INT32_MIN, INT32_MAX)
    b64 = _int_array(b, "b", INT32_MIN, INT32_MAX)
    ab = a64 * b64  # |ab| <= 2**62: exact in int64
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    # C++ '/' truncates toward zero; '>>' floors, so add one to inexact negatives.
    quot = (nudged >> 31) + ((nudged < 0) & ((nudged & ((1 << 31) - 1)) != 0))
    overflow = (a64 == INT32_MIN) & (b64 == INT32_MIN)
    return _out(np.where(overflow, INT32_MAX, quot), a, b)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded half away from zero.

    ``x`` is int32; ``exponent`` is in ``[0, 31]`` and may be an array
    broadcast against ``x``.
    """
    x64 = _int_array(x, "x", INT32_MIN, INT32_MAX)
    e64 = _int_array(exponent, "exponent", 0, 31)
    mask = (np.int64(1) << e64) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0)
    return _out((x64 >> e64) + (remainder > threshold), x, exponent)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite ``MultiplyByQuantizedMultiplier(int32_t x, int32_t, int shift)``, double rounding.

    ``RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * (1 << left),
    multiplier), right)`` with ``left = max(shift, 0)``, ``right = max(-shift, 0)``.
    ``x * (1 << left)`` wraps modulo 2**32 exactly like TFLite's ``int32_t``
    product (see the module docstring); it does not saturate.

    ``x`` and ``multiplier`` are int32 (any sign for ``multiplier``, as gemmlowp
    allows); ``shift`` is in ``[-31, 30]``, the range :func:`quantize_multiplier`
    produces.  ``multiplier`` and ``shift`` may be per-channel arrays.
    """
    x64 = _int_array(x, "x", INT32_MIN, INT32_MAX)
    m64 = _int_array(multiplier, "multiplier", INT32_MIN, INT32_MAX)
    s64 = _int_array(shift, "shift", -31, 30)
    left = np.maximum(s64, 0)
    right = np.maximum(-s64, 0)
    shifted = _wrap_int32(x64 << left)  # |x64 << left| < 2**61: no int64 overflow
    high = saturating_rounding_doubling_high_mul(shifted, m64)
    return _out(rounding_divide_by_pot(high, right), x, multiplier, shift)


def multiply_by_quantized_multiplier_int64(x, multiplier, shift):
    """TFLite ``MultiplyByQuantizedMultiplier(int64_t x, int32_t, int shift)`` (int16x8 kernels).

    As in TFLite's ``common.cc`` (identical in both rounding builds), the
    multiplier is first reduced to 16 bits::

        reduced = (multiplier + 2**15) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF
        total_shift = 15 - shift
        result = (x * reduced + (1 << (total_shift - 1))) >> total_shift

    (round half up), then converted to ``int32_t``.  TFLite's asserts are
    enforced as ``ValueError``: ``-2**47 <= x < 2**47``, ``multiplier >= 0``,
    ``-31 <= shift < 8``.  Under them ``|x * reduced| < 2**62``, so the int64
    arithmetic here is exact.  TFLite assumes the result fits in int32; if it
    does not, it wraps modulo 2**32 like TFLite's implicit conversion.
    """
    x64 = _int_array(x, "x", _INT48_MIN, _INT48_MAX)
    m64 = _int_array(multiplier, "multiplier", 0, INT32_MAX)
    s64 = _int_array(shift, "shift", -31, 7)
    reduced = np.where(m64 < 0x7FFF0000, (m64 + (1 << 15)) >> 16, 0x7FFF)
    total_shift = 15 - s64
    rounded = x64 * reduced + (np.int64(1) << (total_shift - 1))
    return _out(_wrap_int32(rounded >> total_shift), x, multiplier, shift)
