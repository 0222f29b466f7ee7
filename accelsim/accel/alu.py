"""The accelerator's vector-ALU datapath, bit for bit, on numpy int64 arrays.

These are the operations the `REQUANT` and `VADD` instructions perform in hardware, written here
from the gemmlowp / TFLite definitions (docs/quantization.md section 3) rather than imported, so
that the simulator models the datapath itself; `tests/test_accel.py` checks them against
`accelsim.core.fixedpoint` (the project's reference implementation).

- `srdhm`: SaturatingRoundingDoublingHighMul, a 32x32 -> 64-bit product, nudge +2^30 (or
  1 - 2^30 when negative), truncating division by 2^31; INT32_MIN x INT32_MIN saturates.
- `rdbpot`: RoundingDivideByPOT, an arithmetic shift with round-half-away-from-zero fix-up.
- `mbqm`: MultiplyByQuantizedMultiplier (double rounding): 32-bit *wrapping* left shift, SRDHM,
  RDBPOT.
- `mbqm64`: TFLite's int64 overload (16-bit layers): multiplier reduced to 16 bits, one rounding
  shift, result wrapped to int32.
- `add` / `mul`: TFLite's quantized ADD and MUL; `lookup`: the VLUT's table read.
"""

from __future__ import annotations

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def wrap(v: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to `bits` (<= 64) bits."""
    v = np.asarray(v, dtype=np.int64)
    if bits >= 64:
        return v
    half = np.int64(1) << (bits - 1)
    mask = (np.int64(1) << bits) - 1
    return ((v + half) & mask) - half


def saturate(v: np.ndarray, bits: int) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    if bits >= 64:
        return v
    return np.clip(v, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def srdhm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b  # |ab| <= 2^62
    nudged = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    q = nudged >> 31  # floor
    q = q + ((nudged < 0) & ((nudged & ((1 << 31) - 1)) != 0))  # toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), np.int64(INT32_MAX), q)


def rdbpot(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.int64)
    e = np.asarray(e, np.int64)
    mask = (np.int64(1) << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > thr)


def mbqm(x: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    x = wrap(x, 32)
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rdbpot(srdhm(wrap(x << left, 32), mult), right)


def mbqm64(x: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.int64)
    m = np.asarray(mult, np.int64)
    shift = np.asarray(shift, np.int64)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, np.int64(0x7FFF))
    total = 15 - shift
    rounded = x * reduced + (np.int64(1) << (total - 1))
    return wrap(rounded >> total, 32)


def requantize(
    acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, zp: int, qmin: int, qmax: int, wide: bool
) -> np.ndarray:
    r = mbqm64(acc, mult, shift) if wide else mbqm(acc, mult, shift)
    return np.clip(r + zp, qmin, qmax)


def add(
    a: np.ndarray,
    b: np.ndarray,
    *,
    zp_a: int,
    zp_b: int,
    zp_out: int,
    left_shift: int,
    m_a: int,
    s_a: int,
    m_b: int,
    s_b: int,
    m_out: int,
    s_out: int,
    qmin: int,
    qmax: int,
    sub: bool = False,
) -> np.ndarray:
    """TFLite add.cc / sub.cc (int8 / int16 reference kernels): `sub` subtracts the rescaled
    second input (after its rounding, as sub.cc does)."""
    x1 = (np.asarray(a, np.int64) - zp_a) << left_shift
    x2 = (np.asarray(b, np.int64) - zp_b) << left_shift
    y2 = mbqm(x2, m_b, s_b)
    raw = wrap(mbqm(x1, m_a, s_a) + (-y2 if sub else y2), 32)
    return np.clip(mbqm(raw, m_out, s_out) + zp_out, qmin, qmax)


def mul(
    a: np.ndarray,
    b: np.ndarray,
    zp_a: int,
    zp_b: int,
    zp_out: int,
    m: int,
    s: int,
    wide: bool,
    qmin: int,
    qmax: int,
) -> np.ndarray:
    """TFLite mul.cc (int8 / int16 reference kernels): the product of the zero-point-subtracted
    operands, one MultiplyByQuantizedMultiplier (the int64 overload when `wide`)."""
    prod = (np.asarray(a, np.int64) - zp_a) * (np.asarray(b, np.int64) - zp_b)
    return requantize(prod, np.int64(m), np.int64(s), zp_out, qmin, qmax, wide)


def _f32(bits: int) -> np.float32:
    return np.array(bits, np.int64).astype(np.int32).view(np.float32)[()]


def _fma32(a: np.ndarray, b, c) -> np.ndarray:
    """float32 fused multiply-add of an 8-bit integer and float32s: the product is exact in
    float64, so one float64 add and one rounding to float32 give the fused result."""
    return (np.asarray(a, np.float64) * np.float64(b) + np.asarray(c, np.float64)).astype(
        np.float32
    )


def add_f32(
    a: np.ndarray, b: np.ndarray, ra: int, rb: int, fixed: int, scalar: str, qmin: int, qmax: int
) -> np.ndarray:
    """ONNX Runtime's QLinearAdd (MlasQLinearAdd): `ra`, `rb`, `fixed` float32 bits."""
    A, B = np.asarray(a).astype(np.float32), np.asarray(b).astype(np.float32)
    fa, fb, fc = _f32(ra), _f32(rb), _f32(fixed)
    if scalar == "a":
        r = _fma32(B, fb, np.float32(fc + (A * fa).astype(np.float32)))
    elif scalar == "b":
        r = _fma32(A, fa, np.float32(fc + (B * fb).astype(np.float32)))
    else:
        r = _fma32(A, fa, _fma32(B, fb, fc))
    return np.clip(np.rint(r).astype(np.int64), qmin, qmax)


def mul_f32(
    a: np.ndarray,
    b: np.ndarray,
    zp_a: int,
    zp_b: int,
    zp_out: int,
    ratio: int,
    qmin: int,
    qmax: int,
) -> np.ndarray:
    """ONNX Runtime's QLinearMul: float32(product) * ratio + zp_out, half to even."""
    prod = (np.asarray(a, np.int64) - zp_a) * (np.asarray(b, np.int64) - zp_b)
    r = (prod.astype(np.float32) * _f32(ratio)).astype(np.float32) + np.float32(zp_out)
    return np.clip(np.rint(r.astype(np.float32)).astype(np.int64), qmin, qmax)


def lookup(a: np.ndarray, lo: int, table) -> np.ndarray:
    """A table read per element: `table[a - lo]`."""
    return np.asarray(table, np.int64)[np.asarray(a, np.int64) - lo]


def split_double(scale) -> tuple[np.ndarray, np.ndarray]:
    """Doubles as (significand, exponent) with `scale == significand * 2**exponent` exactly, the
    significand an integer of at most 53 bits: the per-channel parameters of `REQUANT f64`."""
    m, e = np.frexp(np.asarray(scale, np.float64))
    return (np.ldexp(m, 53).astype(np.int64), (e - 53).astype(np.int64))


def requantize_f64(
    acc: np.ndarray, sig: np.ndarray, exp: np.ndarray, zp: int, qmin: int, qmax: int
) -> np.ndarray:
    """TFLite FULLY_CONNECTED's reference requantization, `round(double(acc) * scale)` rounded
    half away from zero: the 32 x 53-bit product of the accumulator and the scale's significand
    rounded to 53 bits (as a double multiply rounds), scaled by 2^exp, rounded to an integer."""
    scale = np.ldexp(np.asarray(sig, np.int64).astype(np.float64), np.asarray(exp, np.int64))
    v = np.asarray(acc, np.int64).astype(np.float64) * scale
    r = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return np.clip(r.astype(np.int64) + zp, qmin, qmax)


def requantize_f32(acc: np.ndarray, bits: np.ndarray, zp: int, qmin: int, qmax: int) -> np.ndarray:
    """ONNX Runtime's MlasRequantizeOutput: `float32(acc) * scale` in float32 (`bits` the
    scale's IEEE bits), rounded half to even, `+ zp`, clamped (integer bounds: clamping before
    or after the rounding is the same)."""
    scale = np.asarray(bits, np.int64).astype(np.int32).view(np.float32)
    f = np.asarray(acc, np.int64).astype(np.float32) * scale
    return np.clip(np.rint(f).astype(np.int64) + zp, qmin, qmax)
