"""Integer requantization as TIR expressions, bit-exact with `accelsim.core.fixedpoint`.

The same integers as TFLite's reference kernels (gemmlowp `fixedpoint.h`, TFLite `common.cc`),
in forms that use each operand once where possible (TVM's `Let` bindings trip its
NarrowDataType pass, and a requantization nested in another, as in `add`, would otherwise grow
as a tree; TVM's CSE pass removes the small duplicates left):

- `SaturatingRoundingDoublingHighMul(a, b)` = `(a*b + nudge) / 2^31` truncated, with
  `nudge = a*b >= 0 ? 2^30 : 1 - 2^30`, is exactly `(a*b + 2^30) >> 31` (arithmetic shift): for
  a negative product the truncation of `p + 1 - 2^30` is the ceiling, and
  `ceil((p + 1 - 2^30) / 2^31) = floor((p + 2^30) / 2^31)`. Its saturation (a == b == INT32_MIN)
  cannot occur: multipliers from `QuantizeMultiplier` are non-negative.
- `RoundingDivideByPOT(x, e)` (halves away from zero) = `(x >> e) + [(x & mask) > (mask >> 1) +
  [x < 0]]` with `mask = 2^e - 1`, gemmlowp's own int32 form (no overflow, no 64-bit lanes),
  each `[.]` a sign bit shifted down rather than a Select.
- `MultiplyByQuantizedMultiplier(int32 x, m, shift)`: `x << left` is an int32 shift that wraps,
  as TFLite's (LLVM `shl` carries no overflow flags); the rest is int64, so nothing overflows.
- the int64 overload of the 16x8 kernels (multiplier reduced to 16 bits, one rounding), result
  wrapped to int32 like TFLite's implicit conversion.
- `nonneg=True` (the caller has checked that the output's clamp starts at or above its zero
  point, as after a fused ReLU or ReLU6): RoundingDivideByPOT's correction for negative
  values is left out. A negative `hi` still gives a result <= 0 (a rounding shift right by at
  least 1 maps -1 and below to 0 or below; no shift keeps it), which the clamp maps to its
  lower bound, as it does the exact result (<= 0 too); a non-negative `hi` rounds as before.
  The same output integers with one fix-up less per vector (NEON: the SSRA; HVX: a VASR and a
  VADD; the generic form: the threshold's sign term).
- `clamp_add`: `clip(r + zp, lo, hi)` computed as `clip(r, lo - zp, hi - zp) + zp`, the same
  integer without int32 overflow.

Every function takes an optional continuation `k` applied to its result (kept so callers read
the same whether or not a helper binds intermediates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accelsim.core.tvm_env import import_tvm


def _t():
    return import_tvm().tirx


def c32(v: int):
    return _t().const(int(v), "int32")


def c64(v: int):
    return _t().const(int(v), "int64")


def _ident(v):
    return v


def mbqm(x, mult, shift, k=_ident, nonneg: bool = False):
    """MultiplyByQuantizedMultiplier(int32 x, int32 mult, int32 shift), double rounding.

    `shift` is in [-31, 30] (QuantizeMultiplier); the min() bounds make that visible to TVM's
    integer analysis. `nonneg`: see the module docstring."""
    tirx = _t()
    left, right = _shift_amounts(shift)
    a = tirx.shift_left(x, left)  # int32, wraps
    hi = tirx.shift_right(a.astype("int64") * mult.astype("int64") + c64(1 << 30), c64(31)).astype(
        "int32"
    )
    return k(_rounding_divide_by_pot(hi, right, nonneg))


def _shift_amounts(shift):
    """(left, right) shift amounts of a QuantizeMultiplier shift, each in [0, 31]."""
    tirx = _t()
    return (
        tirx.min(tirx.max(shift, c32(0)), c32(31)),
        tirx.min(tirx.max(c32(0) - shift, c32(0)), c32(31)),
    )


def _rounding_divide_by_pot(hi, right, nonneg: bool = False):
    """RoundingDivideByPOT(int32 hi, right in [0, 31]) in int32 as gemmlowp writes it
    (remainder against a threshold that is one higher for negative values): no 64-bit lanes
    after the product, which halves the vector work of a requantization on 512-bit x86 (int64
    ops take two registers per 16 lanes). The two tests are sign bits, not Selects: TVM's
    simplifier analyses each Select's arms under its condition, and with `hi` (which holds the
    whole input) in every condition an add's three nested requantizations took 45-50 s to
    compile on hvx-v68, 0.1 s without them. `nonneg` (module docstring): the threshold
    without its `[hi < 0]`."""
    tirx = _t()
    mask = tirx.shift_right(c32(0x7FFFFFFF), c32(31) - right)  # 2^right - 1, no overflow
    threshold = tirx.shift_right(mask, c32(1))
    if not nonneg:
        threshold = threshold - tirx.shift_right(hi, c32(31))  # + [hi < 0]
    # [remainder > threshold]: both lie in [0, 2^31), so the difference cannot overflow
    down = tirx.shift_right(threshold - tirx.bitwise_and(hi, mask), c32(31))  # -1 or 0
    return tirx.shift_right(hi, right) - down


def mbqm64(x, mult, shift, k=_ident):
    """MultiplyByQuantizedMultiplier(int64 x, int32 mult, int32 shift) -> int32 (wrapped)."""
    tirx = _t()
    m = mult.astype("int64")
    reduced = tirx.Select(
        m < c64(0x7FFF0000), tirx.shift_right(m + c64(1 << 15), c64(16)), c64(0x7FFF)
    )
    total = (c32(15) - tirx.min(tirx.max(shift, c32(-31)), c32(7))).astype("int64")
    rounded = x * reduced + tirx.shift_left(c64(1), total - c64(1))
    return k(tirx.shift_right(rounded, total).astype("int32"))


def round_half_away_i64(v, lo: float = -(2.0**62), hi: float = 2.0**62):
    """std::round of a float64 value (halves away from zero) as int64, after clamping the value
    to [lo, hi]: `trunc(|v| + 0.5)` with the sign put back (a float -> int conversion
    truncates, so no libm `floor` call is needed: freestanding targets have none)."""
    tirx = _t()
    f64 = "float64"
    vv = tirx.max(tirx.min(v, tirx.const(hi, f64)), tirx.const(lo, f64))
    a = (tirx.abs(vv) + tirx.const(0.5, f64)).astype("int64")
    return tirx.Select(vv < tirx.const(0.0, f64), c64(0) - a, a)


# the smallest divisor `div_known` is used for: with |x| below 2^-100 the remainder x - s q can
# underflow (Markstein's theorem assumes it does not), and then x / s stays below 2^-40, which
# every rounding to an integer takes to 0 whichever quotient it is given
DIV_KNOWN_MIN_SCALE = 2.0**-60


def div_known(x, s, r, bound: float = 2.0**22):
    """x / s rounded to the nearest float32, as IEEE division gives it, for a divisor known
    in advance (a quantization scale) with r = 1 / s correctly rounded
    (`accelsim.core.requant.reciprocal32`): q = x r, the remainder x - s q exactly by one
    fused multiply-add, then q + (x - s q) r rounded once. Markstein's theorem (P. Markstein,
    "Computation of elementary functions on the IBM RISC System/6000 processor", IBM J. Res.
    Dev. 34(1), 1990; J.-M. Muller, "Accelerating floating-point division when the divisor is
    known in advance", ENS Lyon report 2002-30) makes that the correctly rounded quotient when
    r is the correctly rounded 1 / s and q within an ulp of x / s, barring underflow: for
    s >= `DIV_KNOWN_MIN_SCALE`, only quotients below 2^-40 (and the sign of a zero) can differ,
    in their last bits, and round to the integer 0 all the same. One multiply and two fused
    multiply-adds against a division (on Hexagon's scalar core about 15 instructions,
    sfrecipa and its Newton steps). `q` is clamped to +-`bound` first: a quotient beyond is
    clamped by every caller's integer range long before, and the clamp keeps the remainder
    finite when x / s overflows."""
    tirx = _t()
    f32 = "float32"

    def fma(a, b, c):
        return tirx.call_llvm_pure_intrin(f32, "llvm.fma", a, b, c)

    # a NaN x may leave q at a bound (IEEE minNum / maxNum return the number): the remainder
    # x - s q is NaN all the same, and so is the result, as x / s is; an infinite x gives an
    # infinite remainder and result of its sign
    q = tirx.max(tirx.min(x * r, tirx.const(bound, f32)), tirx.const(-bound, f32))
    return fma(fma(-q, s, x), r, q)


def round_half_away_f32(v, lo: float, hi: float):
    """std::round of a float32 value (halves away from zero) as int32, after clamping it to
    [lo, hi] (integers, |lo|, |hi| < 2^24), in float32 alone (Hexagon V62 has no float64
    instructions): the truncation `t` toward zero, then one step away from zero when the
    fraction `v - t` reaches a half. The fraction is exact: for |v| >= 1, t and v are within a
    factor of two (Sterbenz), for |v| < 1 t is 0, and above 2^23 every float32 is an integer."""
    tirx = _t()
    f32 = "float32"
    vv = tirx.max(tirx.min(v, tirx.const(hi, f32)), tirx.const(lo, f32))
    t = vv.astype("int32")
    frac = vv - t.astype(f32)
    up = tirx.Select(frac >= tirx.const(0.5, f32), c32(1), c32(0))
    down = tirx.Select(frac <= tirx.const(-0.5, f32), c32(1), c32(0))
    return t + up - down


def round_half_even_f32(f):
    """rint of a float32 value with |f| <= 2^22, as int32 (freestanding targets have no libm
    `nearbyintf`): `f + 1.5 * 2^23` lies in [2^23, 2^24], where a float32 has no fraction bits,
    so the add rounds half to even as IEEE does, and the integer is the sum's bit pattern less
    that of 1.5 * 2^23. (Subtracting the constant again in float32 is the textbook form, but
    TVM's simplifier folds `(f + c) - c` to `f`.)"""
    tirx = _t()
    magic = tirx.const(12582912.0, "float32")  # 0x4B400000
    return tirx.reinterpret("int32", f + magic) - c32(0x4B400000)


def mlas_finish(f, zp, lo, hi):
    """The end of ONNX Runtime's requantization (`MlasRequantizeOutput`, `MlasQuantizeLinear`)
    of a float32 value `f` as int32: clamped to [lo - zp, hi - zp] (integer bounds, so clamping
    before rounding is clamping after), rounded half to even, plus the zero point `zp`."""
    f = clip(f, (lo - zp).astype("float32"), (hi - zp).astype("float32"))
    return round_half_even_f32(f) + zp


def clamp_add(r, zp, lo, hi):
    """clip(r + zp, lo, hi) for int32 r without int32 overflow."""
    tirx = _t()
    return tirx.max(tirx.min(r, hi - zp), lo - zp) + zp


def _saturate(v, dtype: str):
    """`v` (a wider integer expression) saturated to `dtype`: LLVM selects the clamp-then-
    truncate as one saturating narrow (NEON SQXTN / SQXTUN, HVX VSAT / VPACK:sat)."""
    tirx = _t()
    lo, hi = {"int16": (-32768, 32767), "int8": (-128, 127), "uint8": (0, 255)}[dtype]
    wide = "int32" if dtype == "int16" else "int16"
    return tirx.max(tirx.min(v, tirx.const(hi, wide)), tirx.const(lo, wide)).astype(dtype)


def narrow_finish(r, zp, lo, hi, out_dtype: str):
    """`clip(r + zp, lo, hi)` as `out_dtype` (8-bit storage) for an int32 `r`, in narrow lanes:
    r saturated to int16, the zero point added with int16 saturation (SQADD .8H), saturated to
    8 bits, clamped there (SMAX / SMIN .16B). Equal to `clamp_add` for every int32 r: a value
    the int16 steps saturate lies outside [-32640, 32639] before and after them, so it clamps
    to the same bound. TFLite's and ruy's NEON requantization end this way; in 4 int32 lanes
    the same steps take an instruction per 4 outputs each."""
    tirx = _t()
    # LLVM's saturating add by name (TVM widens the scalar call with the vector): written as
    # clamp(int32(a) + b), InstCombine widens the first narrowing back to an int32 clamp
    s16 = tirx.call_llvm_pure_intrin(
        "int16", "llvm.sadd.sat.i16", _saturate(r, "int16"), zp.astype("int16")
    )
    v = _saturate(s16, out_dtype)
    return tirx.max(tirx.min(v, hi.astype(out_dtype)), lo.astype(out_dtype))


def clip(v, lo, hi):
    tirx = _t()
    return tirx.max(tirx.min(v, hi), lo)


def _neon(name: str, *args):
    return _t().call_llvm_pure_intrin("int32", f"llvm.aarch64.neon.{name}.i32", *args)


def mbqm_sqrdmulh(
    x, mult, shift, k=_ident, left_shifts: bool = True, nudge: bool = False, nonneg: bool = False
):
    """`mbqm` in 32-bit lanes with the NEON instructions gemmlowp's own NEON path uses:
    SQRDMULH is `(a*b + 2^30) >> 31` saturated (the saturation needs a == b == INT32_MIN, and
    multipliers are non-negative); RoundingDivideByPOT is SRSHL by -e after adding the fix-up
    `(v & -e) >> 31` (-1 for a negative v when e > 0) with SQADD. The saturating add differs
    from the exact sum only at v = INT32_MIN, where both round to the same quotient (the
    dividend's remainder mod 2^e is 2^(e-1) either way, never 0). The sign tested is that of the
    product, not of its operand as in `mbqm`: for a non-negative multiplier they differ only
    when the product is 0, which rounds to 0 either way.

    The calls are scalar `i32` intrinsics that TVM's vectorizer widens; LLVM selects them only
    on 128-bit vectors (no scalar SRSHL .S, and no splitting of wider vectors), so the schedule
    vectorizes such an epilogue in exactly `RequantForm.lanes` lanes. `left_shifts=False`: no
    channel's shift is positive (the layer's multipliers are known when it is lowered), so the
    left shift is left out.

    `nudge` (the caller has checked that every channel's shift is a right shift, in
    `NUDGE_RIGHT`): the fix-up is `hi >> 31` added by one SSRA, with no test of the shift
    amount (it is never 0) and no saturation: `hi = SQRDMULH(x, m) >= -2^31 + 1` for a
    multiplier below 2^31 (the product is above -2^62), so `hi - 1` cannot wrap. 3 vector
    instructions per 4 outputs where the general form takes 5 (SQRDMULH, CMLT + AND, SQADD,
    SRSHL).

    `nonneg` (module docstring): no fix-up at all, SRSHL alone (2 vector instructions per 4
    outputs)."""
    tirx = _t()
    if nudge:  # every shift a right shift: no clamping of the amounts, no left shift
        hi = _neon("sqrdmulh", x, mult)
        return k(_neon("srshl", hi if nonneg else hi + tirx.shift_right(hi, c32(31)), shift))
    neg = tirx.max(tirx.min(shift, c32(0)), c32(-31))  # -right
    if left_shifts:  # x << left wraps, as in `mbqm`
        x = tirx.shift_left(x, _shift_amounts(shift)[0])
    hi = _neon("sqrdmulh", x, mult)
    if nonneg:
        return k(_neon("srshl", hi, neg))
    fix = tirx.shift_right(tirx.bitwise_and(hi, neg), c32(31))
    return k(_neon("srshl", _neon("sqadd", hi, fix), neg))


def _hvx(name: str, *args):
    return _t().call_llvm_pure_intrin("int32", f"llvm.hexagon.V6.{name}.128B", *args)


# right shifts for which `mbqm_vmpye(..., nudge=True)` matches gemmlowp's rounding when its
# result is clamped to 8 bits: a saturated (hi + nudge) is off by one only where hi + nudge
# overflows int32, and then the exact result is 2^(31 - right) >= 2^9, which every 8-bit clamp
# (after a zero point of at most 255 either way) maps where the saturated one goes
NUDGE_RIGHT = (1, 22)


def mbqm_vmpye(
    x, mult, shift, k=_ident, left_shifts: bool = True, nudge: bool = False, nonneg: bool = False
):
    """`mbqm` in 32-bit HVX lanes, the 32 x 32 fractional multiply of the HVX manual's
    "Multiply" section: `e = vmpye(x.w, m.uh)` is `(x * (m & 0xFFFF)) >> 16`, then
    `e += vmpyo(x.w, m.h):<<1:rnd:sat:shift` forms `((((e + x * (m >> 16)) >> 14) + 1) >> 1)`.
    The sum in that second step is `floor(x * m / 2^16)` exactly (the low half's product is
    floored once, then added to the high half's, which has no fraction), and
    `floor((floor(p / 2^30) + 1) / 2) = floor((p + 2^30) / 2^31)`: gemmlowp's
    SaturatingRoundingDoublingHighMul, whose saturation cannot occur for a non-negative
    multiplier. RoundingDivideByPOT then runs as `mbqm` writes it, in int32 (per-lane shifts
    `vasr(Vu.w, Vv.w)`). The calls are scalar in TIR and name the 128-byte intrinsics, which
    take 32 int32 lanes: the schedule vectorizes the epilogue in exactly 32 lanes
    (`RequantForm.lanes`), so the widened calls have the intrinsics' own types.

    `nudge` (the caller has checked that every channel's shift is a right shift in
    `NUDGE_RIGHT` and that the result is clamped to 8 bits, or cannot overflow): the rounding
    as `(hi +sat 2^(right - 1) + (hi >> 31)) >> right`, which is RoundingDivideByPOT's
    `(hi >> right) + [remainder > half + (hi < 0)]` for right >= 1 (both are floor((hi +
    2^(right-1) - [hi < 0]) / 2^right)): 7 vector instructions per 32 outputs where the
    threshold form takes 14, the shift amounts derived in-kernel included. `nonneg`
    (module docstring): without the `(hi >> 31)` term (or the threshold's `[hi < 0]`)."""
    tirx = _t()
    if nudge:  # every shift a right shift in NUDGE_RIGHT: no clamping of the amounts
        left, right = None, c32(0) - shift
    else:
        left, right = _shift_amounts(shift)
    if left_shifts and left is not None:  # x << left wraps, as in `mbqm`
        x = tirx.shift_left(x, left)
    hi = _hvx("vmpyowh.rnd.sacc", _hvx("vmpyewuh", x, mult), x, mult)
    if not nudge:
        return k(_rounding_divide_by_pot(hi, right, nonneg))
    half = tirx.shift_right(tirx.shift_left(c32(1), right), c32(1))
    up = tirx.call_llvm_pure_intrin("int32", "llvm.sadd.sat", hi, half)
    return k(tirx.shift_right(up if nonneg else up + tirx.shift_right(hi, c32(31)), right))


_HVX_PACK_B = {
    "int8": "llvm.hexagon.V6.vpackhb.sat.128B",
    "uint8": "llvm.hexagon.V6.vpackhub.sat.128B",
}
_finish_registered: set[str] = set()


def hvx_finish_intrinsic(out_dtype: str, n: int) -> str | None:
    """The TensorIntrin (registered with TVM on first use) that computes `narrow_finish` of `n`
    int32 values (64: a 64-channel tile's pixel; 128) with HVX's saturating packs: `Vd.h =
    vpack(Vu.w, Vv.w):sat` per two vectors, the zero point added with `Vd.h = vadd(Vu.h,
    Vv.h):sat`, then `Vd.b = vpack(Vu.h, Vv.h):sat` (`.ub` for uint8) and the clamp. Each pack
    keeps the lane order (Vv's lanes first, then Vu's) and each step is `narrow_finish`'s own:
    the same integers. LLVM selects that expression's int16 and int8 saturations as a VMIN +
    VMAX pair per vector and a truncating VPACKE (MobileNet v2 features.12.conv.0.0 on hvx-v68:
    77 vector instructions per 448 outputs where these take 35). The output starts at a
    multiple of `n` elements (the caller offers `n` only where the channels are a multiple of
    it), so LLVM knows the stores' alignment. None: no form for `out_dtype`."""
    if out_dtype not in _HVX_PACK_B or n not in (64, 128):
        return None
    key = f"accelsim.requant.hvx_finish.{out_dtype}x{n}"
    if key in _finish_registered:
        return key
    import_tvm()
    from tvm.s_tir import TensorIntrin
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def desc(r: T.handle, q: T.handle, y: T.handle) -> None:
        R = T.match_buffer(r, (n,), "int32", offset_factor=1)
        Q = T.match_buffer(q, (3,), "int32", offset_factor=1)
        Y = T.match_buffer(y, (n,), out_dtype, offset_factor=n)
        with T.sblock("root"):
            T.reads(R[0:n], Q[0:3])
            T.writes(Y[0:n])
            for i in T.serial(0, n):
                with T.sblock("y"):
                    vi = T.axis.remap("S", [i])
                    Y[vi] = narrow_finish(R[vi], Q[0], Q[1], Q[2], out_dtype)

    def word(x):
        return T.reinterpret(x, dtype="int32x32")

    def value(R, Q):
        words = [R.vload([32 * i], dtype="int32x32") for i in range(n // 32)]
        zp = T.Broadcast(T.Cast("int16", Q[0]), 64)
        halves = [
            T.call_llvm_pure_intrin(
                "int16x64",
                "llvm.sadd.sat",
                T.reinterpret(
                    T.call_llvm_pure_intrin(
                        "int32x32", "llvm.hexagon.V6.vpackwh.sat.128B", words[i + 1], words[i]
                    ),
                    dtype="int16x64",
                ),
                zp,
            )
            for i in range(0, len(words), 2)
        ]
        hi = halves[1] if n == 128 else halves[0]
        packed = T.reinterpret(
            T.call_llvm_pure_intrin("int32x32", _HVX_PACK_B[out_dtype], word(hi), word(halves[0])),
            dtype=f"{out_dtype}x128",
        )
        if n == 64:  # both halves hold the 64 bytes: the lower one is stored
            packed = T.Shuffle([packed], [T.int32(i) for i in range(64)])
        lo_b = T.Broadcast(T.Cast(out_dtype, Q[1]), n)
        hi_b = T.Broadcast(T.Cast(out_dtype, Q[2]), n)
        return T.max(T.min(packed, hi_b), lo_b)

    @T.prim_func(s_tir=True)
    def impl(r: T.handle, q: T.handle, y: T.handle) -> None:
        R = T.match_buffer(r, (n,), "int32", offset_factor=1)
        Q = T.match_buffer(q, (3,), "int32", offset_factor=1)
        Y = T.match_buffer(y, (n,), out_dtype, offset_factor=n)
        with T.sblock("root"):
            T.reads(R[0:n], Q[0:3])
            T.writes(Y[0:n])
            Y[T.ramp(T.int32(0), 1, n)] = value(R, Q)

    TensorIntrin.register(key, desc, impl)
    _finish_registered.add(key)
    return key


@dataclass(frozen=True)
class RequantForm:
    """A requantization the target's instructions compute in 32-bit lanes (recipe key
    `epilogue.requant`); the generic int64 form (`mbqm`) serves every other layer."""

    name: str
    requires: tuple[str, ...]  # target `codegen.features`
    lanes: int  # int32 lanes the epilogue is vectorized in (one vector register)
    build: Callable[..., Any]  # as `mbqm`
    doc: str = ""
    # the form also serves a channel count that is not a multiple of `lanes`: conv2d and dense
    # then write their output padded to whole vectors and slice it when unpacking (depthwise
    # blocks divide the channels, so a depthwise layer never has a tail)
    tail: bool = False
    # the zero point and the clamp of an 8-bit output in a stage of their own, in 8-bit lanes
    # (`narrow_finish`): NEON narrows 4 int32 lanes per instruction, so a 4-lane epilogue
    # spends one instruction per 4 outputs on each step
    narrow_finish: bool = False
    # (output dtype, lanes) -> the TensorIntrin that computes `narrow_finish` over that many
    # lanes with the target's saturating packs, or None (the finish is vectorized as written)
    finish_intrinsic: Callable[[str, int], str | None] | None = None


FORMS: tuple[RequantForm, ...] = (
    RequantForm(
        "sqrdmulh",
        ("neon",),
        4,
        mbqm_sqrdmulh,
        "Armv8 NEON: SSHL, SQRDMULH, AND, SSHR, SQADD, SRSHL on 4 int32 lanes; then SQXTN, "
        "SQADD .8H, SQXTN, SMAX, SMIN in 8-bit lanes",
        narrow_finish=True,
    ),
    RequantForm(
        "vmpye",
        ("hvx-128b",),
        32,
        mbqm_vmpye,
        "Hexagon HVX (128-byte): VMPYE + VMPYO:<<1:rnd:sat:shift, per-lane VASR on 32 int32 lanes; "
        "then the zero point and the clamp in 16- and 8-bit lanes (VPACK:sat, VADD:sat, "
        "VPACK:sat, VMIN, VMAX)",
        tail=True,
        narrow_finish=True,
        finish_intrinsic=hvx_finish_intrinsic,
    ),
)
FORM_NAMES: tuple[str, ...] = tuple(f.name for f in FORMS)


def select_form(names, features) -> RequantForm | None:
    """The first form in `names` whose required features the target has (None: generic)."""
    for name in names:
        for f in FORMS:
            if f.name == name and set(f.requires) <= set(features):
                return f
    return None
