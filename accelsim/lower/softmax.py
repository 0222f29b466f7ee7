"""Softmax as one TVM kernel: quantized inputs bit-exact with `accelsim.ref.gemmlowp_ops.softmax`,
float inputs within float32 rounding of `accelsim.ref.fp_ops.softmax`.

Quantized, the same integers as TFLite's reference kernels:

- 8-bit input (`reference_ops::Softmax`): per row the maximum, then per element the difference
  scaled into Q5.26, gemmlowp's fixed-point `exp_on_negative_values` (a quartic around -1/8 and
  a barrel shifter over the integer bits), the sum of the exps in Q12.19, one reciprocal per row
  (`one_over_one_plus_x_for_x_in_0_1`: three Newton-Raphson steps) and a rounding shift of
  exp x reciprocal into the output.
- int16 input (`reference_ops::SoftmaxInt16`): exp and 1/(1+x) from TFLite's two 513-entry LUTs
  (kernel arguments, built by the reference's own `LUTPopulateInt16`) with linear interpolation.

- float (fp32, fp16 graphs): exp(beta * (x - max)) / sum in float32 arithmetic (libm's
  `expf`; the float16 graphs too, with float16 loads and stores). On targets whose runtime has
  no libm (`codegen.emulator.libm: false`: the Hexagon targets' freestanding runtime) the exp is
  `accelsim.lower.floatmath.exp`, a polynomial.

ONNX QDQ graphs (ONNX Runtime's arithmetic): QLinearSoftmax's uint32 table and integer
division (`_ort_rows`); the softmaxes ORT runs in float (16-bit, beta != 1) are not lowered.

An output quantized otherwise than TFLite's fixed format (graphs from accelsim's own PTQ) is
requantized in the same kernel, as the reference does.

The kernel sees the tensor as [outer, K, inner] in kernel layout, K the softmax axis. Its main
block is the output (loops `o`, `k`, `i`). The per-row stages (maximum; the K exps, kept in
K-element buffers so that each is computed once, where the reference computes it twice; their
sum; the reciprocal, one stage per Newton-Raphson step) are `prologue` blocks computed under
the loop just outside `k` (ComputeSpec.prologue). The exp itself is staged too: the scaled
input, each term of the quartic, and the barrel shifter in groups of three steps. One
expression for all of it makes TVM's simplifier take seconds to minutes per kernel (it grows
about threefold per barrel step, and expands the quartic's products of sums); staged, a
softmax kernel compiles in about a second.

Fixed-point helpers: SaturatingRoundingDoublingHighMul as `(a*b + 2^30) >> 31` in int64 (see
`accelsim.lower.requant`); its one saturating case (both operands INT32_MIN) cannot occur here:
every product has one operand that is a positive constant, a row scalar in (0, 2^31), or an
exp polynomial term in [-2^28, 2^28].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from accelsim.core import requant as rp
from accelsim.core.qparams import DTYPE_BITS, QuantParams, dtype_range, store_dtype
from accelsim.core.tvm_env import import_tvm
from accelsim.lower import floatmath
from accelsim.lower import requant as rq
from accelsim.lower.common import (
    Built,
    Ctx,
    FloatArith,
    NotLowered,
    _block,
    _kaxis,
    _kshape,
    _lanes,
    _need_per_tensor,
    float_types,
    from_kernel_layout,
    tensor_layout,
    to_kernel_layout,
)
from accelsim.lower.schedule import Axis, ComputeSpec
from accelsim.model.graph import TensorInfo
from accelsim.ref import gemmlowp_ops as ref
from accelsim.ref import qdq_ops

INT32_MAX = (1 << 31) - 1
SCORE_BITS = ref.SOFTMAX_SCORE_BITS


def _t():
    return import_tvm().tirx


def _c(v: int):
    return rq.c32(v)


def _wrap(v64):
    """int64 -> int32 two's-complement wrap (LLVM trunc)."""
    return v64.astype("int32")


def _srdhm(a, b):
    t = _t()
    return _wrap(t.shift_right(a.astype("int64") * b.astype("int64") + rq.c64(1 << 30), rq.c64(31)))


def _rdbpot(x, e):
    """RoundingDivideByPOT(int32 x, e) for 0 <= e <= 31 (halves away from zero)."""
    t = _t()
    x64 = x.astype("int64")
    e64 = rq.c64(e) if isinstance(e, int) else e.astype("int64")
    half = t.shift_right(t.shift_left(rq.c64(1), e64), rq.c64(1))
    neg = t.Select(t.all(x < _c(0), e64 > rq.c64(0)), rq.c64(1), rq.c64(0))
    return _wrap(t.shift_right(x64 + half - neg, e64))


def _rdbpot_nonneg(x, e):
    """RoundingDivideByPOT of an x known to be >= 0 (one use of x, so no expression copies)."""
    t = _t()
    e64 = rq.c64(e) if isinstance(e, int) else e.astype("int64")
    half = t.shift_right(t.shift_left(rq.c64(1), e64), rq.c64(1))
    return _wrap(t.shift_right(x.astype("int64") + half, e64))


def _sat_shl(x, e: int):
    """SaturatingRoundingMultiplyByPOT<e> for e > 0: the int64 shift clamped to int32 gives
    the same values as gemmlowp's threshold tests (x > 2^(31-e) - 1 -> INT32_MAX, x < -that
    -> INT32_MIN) with one use of x."""
    t = _t()
    v = t.shift_left(x.astype("int64"), rq.c64(e))
    return _wrap(t.max(t.min(v, rq.c64(INT32_MAX)), rq.c64(-(1 << 31))))


def exp_quarter_terms(a, integer_bits: int, powers):
    """exp_on_interval_between_negative_one_quarter_and_0_excl of `a mod 1/4 - 1/4`, in
    Q0.31, as a list of stage bodies: x = that + 1/8, then x^2, x^3, x^4 and the result, each
    written over `powers(j)`, the value of stage j (a buffer element). A single expression
    would hold x ten times, and TVM's simplifier, expanding the products of sums, takes
    seconds per kernel on it."""
    c = ref.EXP_QUARTER
    a_mod = _a_mod(a, integer_bits)
    return [
        lambda: (_sat_shl(a_mod, integer_bits) if integer_bits else a_mod) + _c(1 << 28),
        lambda: _srdhm(powers(0), powers(0)),  # x^2
        lambda: _srdhm(powers(1), powers(0)),  # x^3
        lambda: _srdhm(powers(1), powers(1)),  # x^4 (>= 0)
        lambda: (
            _c(c["constant_term"])
            + _srdhm(
                _c(c["constant_term"]),
                powers(0)
                + _rdbpot(
                    _srdhm(_rdbpot_nonneg(powers(3), 2) + powers(2), _c(c["one_third"]))
                    + powers(1),
                    1,
                ),
            )
        ),
    ]


def _a_mod(a, integer_bits: int):
    one_quarter = 1 << (31 - integer_bits - 2)
    return _t().bitwise_and(a, _c(one_quarter - 1)) - _c(one_quarter)


BARREL_GROUP = 3  # barrel-shifter steps per stage: TVM's simplifier time grows ~3x per step


def barrel_groups(integer_bits: int) -> list[tuple[tuple[int, int], ...]]:
    """The barrel shifter's (exponent, multiplier) steps for `integer_bits`, in stage groups."""
    steps = [s for s in ref.EXP_BARREL if integer_bits > s[0]]
    return [tuple(steps[i : i + BARREL_GROUP]) for i in range(0, len(steps), BARREL_GROUP)]


def exp_barrel(result, a, integer_bits: int, steps, last: bool):
    """exp_on_negative_values, second part: `result` times exp(-2^e) for each (e, multiplier)
    of `steps` whose bit e is set in the remainder; with `last`, then the clamp and the a == 0
    case.

    The barrel shifter's `bit ? SRDHM(result, m) : result` is written as one multiply by
    `bit ? m : 2^31` in int64 ((r * 2^31 + 2^30) >> 31 == r), so `result` is used once per step
    instead of doubling the expression with each step."""
    t = _t()
    frac = 31 - integer_bits
    remainder = _a_mod(a, integer_bits) - a
    for exponent, multiplier in steps:
        bit = _c(1 << (frac + exponent))
        m = t.Select(t.bitwise_and(remainder, bit) != _c(0), rq.c64(multiplier), rq.c64(1 << 31))
        result = _wrap(t.shift_right(result.astype("int64") * m + rq.c64(1 << 30), rq.c64(31)))
    if not last:
        return result
    if integer_bits > 5:
        result = t.Select(a < _c(-(1 << (36 - integer_bits))), _c(0), result)
    # a == 0 -> INT32_MAX, as `result | (a == 0 ? INT32_MAX : 0)` (result is in [0, 2^31)):
    # a select with the barrel shifter on one arm only is turned into a branch around it by
    # LLVM, which would make the kernel's instruction count depend on the data
    return t.bitwise_or(result, t.bitwise_and(_c(INT32_MAX), _c(0) - (a == _c(0)).astype("int32")))


def _rounding_half_sum(a):
    """RoundingHalfSum(a, INT32_MAX) for a >= 0: (a + INT32_MAX + 1) / 2, C++ truncation."""
    return _wrap(_t().shift_right(a.astype("int64") + rq.c64(INT32_MAX) + rq.c64(1), rq.c64(1)))


NEWTON_STEPS = 3


def reciprocal_start(a):
    """one_over_one_plus_x_for_x_in_0_1, up to the Newton-Raphson steps: the half denominator
    (Q0.31) and the first estimate 48/17 - 32/17 * d (Q2.29)."""
    c = ref.RECIPROCAL
    half_den = _rounding_half_sum(a)
    return half_den, _c(c["c48_over_17"]) + _srdhm(half_den, _c(c["c_neg32_over_17"]))


def newton_step(half_den, x):
    """x + x * (1 - d * x), Q2.29 (`x` is a buffer element: read, not an expression tree)."""
    one_minus = _c(1 << 29) - _srdhm(half_den, x)
    return x + _sat_shl(_srdhm(x, one_minus), 2)


def _lut_lookup(value, lut, row: int):
    """LUTLookup(int16 value, const int16* lut): 9-bit index, 7-bit linear interpolation."""
    t = _t()
    index = _c(256) + t.shift_right(value, _c(7))
    offset = t.bitwise_and(value, _c(0x7F))
    base = lut[row, index].astype("int32")
    slope = lut[row, index + _c(1)].astype("int32") - base
    delta = t.shift_right(slope * offset + _c(64), _c(7))
    return (base + delta).astype("int16").astype("int32")  # static_cast<int16_t>


@dataclass
class _Rows:
    """One softmax formula: its extra kernel arguments, the per-row prologue stages (by block
    name, in dependence order) and the output value of element (o, k, i)."""

    params: list
    pnames: list[str]
    consts: dict
    prologue: tuple[str, ...]
    value: Callable
    fmt: str
    arith: FloatArith | None = None


def _int8_rows(x, rk, O, K, I, qp, out_bits: int, nlo: int, nhi: int) -> _Rows:
    """reference_ops::Softmax (8-bit input); qp = [multiplier, left shift, diff_min, ...]."""
    te, t = import_tvm().te, _t()
    mx = te.compute((O, I), lambda o, i: te.max(x[o, rk, i].astype("int32"), axis=rk), name="mx")

    def diff(o, k, i):
        return x[o, k, i].astype("int32") - mx[o, i]

    # gemmlowp exp_on_negative_values in stages (module docstring). Elements below
    # diff_min (the reference's `valid` mask) enter as INT32_MIN, whose exp is exactly 0: they
    # then add nothing to the sum and give the output's minimum, as the reference's mask does,
    # with no select on an expensive value (LLVM would branch around it, making the instruction
    # count data-dependent); the clamp keeps the shift of the masked ones from overflowing.
    def scaled(o, k, i):
        d = diff(o, k, i)
        s64 = _srdhm(t.shift_left(t.max(d, qp[2]), qp[1]), qp[0]).astype("int64") - (
            d < qp[2]
        ).astype("int64") * rq.c64(1 << 32)
        return _wrap(t.max(s64, rq.c64(-(1 << 31))))

    sc = te.compute((O, K, I), scaled, name="sc")
    eq: list = []  # x, x^2, x^3, x^4, exp(a mod 1/4 - 1/4): one stage each

    def term(j):
        def body(o, k, i):
            terms = exp_quarter_terms(sc[o, k, i], SCORE_BITS, lambda n: eq[n][o, k, i])
            return terms[j]()

        return body

    for j in range(5):
        eq.append(te.compute((O, K, I), term(j), name=f"eq{j}"))
    groups = barrel_groups(SCORE_BITS)
    stages = [eq[-1]]

    def barrel(steps, last):
        prev = stages[-1]
        return lambda o, k, i: exp_barrel(prev[o, k, i], sc[o, k, i], SCORE_BITS, steps, last)

    for g_, steps in enumerate(groups):
        last = g_ == len(groups) - 1
        stages.append(te.compute((O, K, I), barrel(steps, last), name="ex" if last else f"eb{g_}"))
    ex = stages[-1]
    sm = te.compute(
        (O, I), lambda o, i: te.sum(_rdbpot_nonneg(ex[o, rk, i], 12), axis=rk), name="sm"
    )

    def shifted(o, i):  # (sum << headroom) - 1 in Q0.31: the x of 1 / (1 + x)
        s_ = sm[o, i]
        return _wrap(
            t.shift_left(
                t.bitwise_and(s_.astype("int64"), rq.c64(0xFFFFFFFF)), t.clz(s_).astype("int64")
            )
            - rq.c64(1 << 31)
        )

    def step_of(prev):
        return lambda o, i, j: t.Select(
            j == 0, prev[o, i, 0], newton_step(prev[o, i, 0], prev[o, i, 1])
        )

    nr = [
        te.compute(
            (O, I, 2),
            lambda o, i, j: t.Select(
                j == 0, reciprocal_start(shifted(o, i))[0], reciprocal_start(shifted(o, i))[1]
            ),
            name="nr0",
        )
    ]
    for step in range(NEWTON_STEPS):
        nr.append(te.compute((O, I, 2), step_of(nr[-1]), name=f"nr{step + 1}"))
    inv = te.compute((O, I), lambda o, i: _sat_shl(nr[-1][o, i, 1], 1), name="inv")

    def value(o, k, i):
        # TFLite checks exponent <= 31; above it (a sum of exps over 2^(out_bits)) every output
        # is under half a step and rounds to 0: a shift by up to 62 of the product (< 2^31)
        # gives that 0 without a select
        exponent = _c(12) - t.clz(sm[o, i]) + _c(31 - out_bits)
        unsat = _rdbpot_nonneg(_srdhm(inv[o, i], ex[o, k, i]), rq.clip(exponent, _c(0), _c(62)))
        return rq.clip(unsat + _c(nlo), _c(nlo), _c(nhi))

    prologue = (
        ("mx", "sc")
        + tuple(f"eq{j}" for j in range(5))
        + tuple(f"eb{j}" for j in range(len(groups) - 1))
        + ("ex", "sm")
        + tuple(f"nr{j}" for j in range(len(nr)))
        + ("inv",)
    )
    return _Rows([], [], {}, prologue, value, "8-bit")


def _int16_rows(x, rk, O, K, I, qp) -> _Rows:
    """reference_ops::SoftmaxInt16; qp = [multiplier, shift, ...]."""
    te, t = import_tvm().te, _t()
    exp_lut, recip_lut = ref.softmax_int16_luts()
    lut = te.placeholder((2, len(exp_lut)), "int16", name="luts")
    mx = te.compute((O, I), lambda o, i: te.max(x[o, rk, i].astype("int32"), axis=rk), name="mx")
    ex = te.compute(
        (O, K, I),
        lambda o, k, i: _lut_lookup(
            rq.clip(
                rq.mbqm(x[o, k, i].astype("int32") - mx[o, i], qp[0], qp[1]) + _c(32767),
                _c(-32768),
                _c(32767),
            ),
            lut,
            0,
        ),
        name="ex",
    )
    sm = te.compute((O, I), lambda o, i: te.sum(ex[o, rk, i], axis=rk), name="sm")

    def row_scale(s_):
        shifted = _wrap(
            t.shift_right(
                t.shift_left(s_.astype("int64"), (t.clz(s_) - _c(1)).astype("int64"))
                + rq.c64(1 << 13),
                rq.c64(14),
            )
        )
        sym = rq.clip(shifted - _c((1 << 15) + (1 << 16)), _c(-32768), _c(32767))
        return _lut_lookup(sym, lut, 1)

    inv = te.compute((O, I), lambda o, i: row_scale(sm[o, i]), name="inv")

    def value(o, k, i):
        right = (_c(31) - t.clz(sm[o, i])).astype("int64")
        rnd = t.shift_left(rq.c64(1), right - rq.c64(1))
        res = t.shift_right(ex[o, k, i].astype("int64") * inv[o, i].astype("int64") + rnd, right)
        return _wrap(t.max(t.min(res, rq.c64(32767)), rq.c64(0)))

    return _Rows(
        [lut],
        ["luts"],
        {"luts": np.stack([exp_lut, recip_lut]).astype(np.int16)},
        ("mx", "ex", "sm", "inv"),
        value,
        "int16",
    )


def _ort_rows(x, rk, O, K, I, x_i: TensorInfo, o_i: TensorInfo) -> _Rows:
    """QLinearSoftmax (`accelsim.ref.qdq_ops.softmax`): the uint32 exponent table (a kernel
    argument, built by the reference's own `softmax_table`) read at x - max + 255, the row sum,
    then (e * floor(1 / y_scale) + sum / 2) mod 2^32 / sum + zp, saturated at 255 and stored
    in the output's 8 bits (ORT's int8 kernel keeps only the low byte). uint32 arithmetic is
    int64 here, wrapped where ORT's wraps."""
    te, t = import_tvm().te, _t()
    table = te.placeholder((256,), "uint32", name="table")
    qp = te.placeholder((2,), "int64", name="qparams")  # floor(1 / y_scale), zero point
    mx = te.compute((O, I), lambda o, i: te.max(x[o, rk, i].astype("int32"), axis=rk), name="mx")
    ex = te.compute(
        (O, K, I),
        lambda o, k, i: table[x[o, k, i].astype("int32") - mx[o, i] + _c(255)].astype("int64"),
        name="ex",
    )
    sm = te.compute((O, I), lambda o, i: te.sum(ex[o, rk, i], axis=rk), name="sm")
    low32 = rq.c64(0xFFFFFFFF)

    def value(o, k, i):
        s_ = t.bitwise_and(sm[o, i], low32)
        num = t.bitwise_and(ex[o, k, i] * qp[0] + t.shift_right(s_, rq.c64(1)), low32)
        q = t.truncdiv(num, t.max(s_, rq.c64(1))) + qp[1]
        return t.min(q, rq.c64(255))  # the caller's cast keeps the low 8 bits, as ORT's

    y_scale = int(np.float32(1.0) / np.float32(o_i.quant.scale[0]))  # narrow_cast: truncation
    consts = {
        "table": qdq_ops.softmax_table(x_i.quant.scale[0], K).astype(np.uint32),
        "qparams": np.array([y_scale, int(o_i.quant.zero_point[0])], np.int64),
    }
    return _Rows([table, qp], ["table", "qparams"], consts, ("mx", "ex", "sm"), value, "ort")


def _float_rows(x, rk, O, K, I, beta: float, out_dtype: str, libm: bool) -> _Rows:
    """exp(beta * (x - max)) / sum in float32 (fp_ops.softmax computes in float64): float32
    even for float16 graphs, as the exp is libm's expf, or `floatmath.exp` (a polynomial) where
    the target's runtime has no libm. Roundings on the chain into one output: the scaled
    difference, the exp (a few ulps: counted as 4), the K-term sum, the division."""
    te, t = import_tvm().te, _t()
    exp = t.exp if libm else floatmath.exp
    f32 = "float32"
    mx = te.compute((O, I), lambda o, i: te.max(x[o, rk, i].astype(f32), axis=rk), name="mx")
    ex = te.compute(
        (O, K, I),
        lambda o, k, i: exp((x[o, k, i].astype(f32) - mx[o, i]) * t.const(beta, f32)),
        name="ex",
    )
    sm = te.compute((O, I), lambda o, i: te.sum(ex[o, rk, i], axis=rk), name="sm")

    def value(o, k, i):
        return (ex[o, k, i] / sm[o, i]).astype(out_dtype)

    return _Rows([], [], {}, ("mx", "ex", "sm"), value, "float", FloatArith(f32, 1 + 4 + K + 1))


def softmax(ctx: Ctx) -> Built:
    """softmax along its axis: 8-bit, int16 or float input (module docstring)."""
    te = import_tvm().te
    node, g = ctx.node, ctx.graph
    x_i, o_i = ctx.info(0), ctx.out
    rank = len(x_i.shape)
    layout = tensor_layout(g, node.inputs[0]) if rank == 4 else "NCHW"
    kin = _kshape(x_i.shape, layout)
    ax = _kaxis(node.attr("axis", -1), rank, layout)
    O, K, I = int(np.prod(kin[:ax])), int(kin[ax]), int(np.prod(kin[ax + 1 :]))
    xdt, odt = store_dtype(x_i.dtype), store_dtype(o_i.dtype)
    beta = float(np.float32(node.attr("beta", 1.0)))
    x = te.placeholder((O, K, I), xdt, name="x")
    rk = te.reduce_axis((0, K), "k")
    qvals: list[int] = []
    need_rq = False
    if x_i.is_float or o_i.is_float:
        prec = float_types(ctx, x_i, o_i).precision
        rows = _float_rows(x, rk, O, K, I, beta, odt, ctx.target.codegen.emulator.libm)
    elif g.requant_mode == "float":  # ONNX QDQ: ONNX Runtime's arithmetic
        prec = ctx.precision
        _need_per_tensor(ctx, x_i, "input")
        _need_per_tensor(ctx, o_i, "output")
        if not qdq_ops.has_integer_softmax(x_i, o_i, beta):
            raise NotLowered(
                f"a {x_i.dtype} -> {o_i.dtype} softmax with ONNX QDQ arithmetic (ONNX Runtime "
                f"has no integer kernel for it: float between DequantizeLinear and QuantizeLinear)"
            )
        rows = _ort_rows(x, rk, O, K, I, x_i, o_i)
    else:
        prec = ctx.precision
        _need_per_tensor(ctx, x_i, "input")
        _need_per_tensor(ctx, o_i, "output")
        if x_i.dtype in ("int8", "uint8") and o_i.dtype in ("int8", "uint8", "int16"):
            natural = QuantParams.per_tensor(
                2.0 ** -DTYPE_BITS[o_i.dtype], dtype_range(o_i.dtype)[0]
            )
            try:
                qvals = list(ref.softmax_8bit_params(beta, x_i.quant.scale[0]))
            except ValueError as exc:
                raise NotLowered(str(exc)) from None
        elif x_i.dtype == "int16" and o_i.dtype == "int16":
            natural = QuantParams.per_tensor(1.0 / 32768, 0)
            qvals = list(ref.softmax_int16_params(beta, x_i.quant.scale[0])) + [0]
        else:
            raise NotLowered(f"softmax from {x_i.dtype} to {o_i.dtype}")
        # qparams: the formula's 3, then TFLite's fixed output format -> the output's
        need_rq, rq_m, rq_s = rp.rescale_multiplier(
            TensorInfo(o_i.name, o_i.shape, o_i.dtype, natural), o_i
        )
        nlo, nhi = dtype_range(o_i.dtype)
        qvals += [int(natural.zero_point[0]), rp.zero_point(o_i), rq_m, rq_s, nlo, nhi]
        qp = te.placeholder((len(qvals),), "int32", name="qparams")
        rows = (
            _int16_rows(x, rk, O, K, I, qp)
            if x_i.dtype == "int16"
            else _int8_rows(x, rk, O, K, I, qp, 8 * np.dtype(odt).itemsize, nlo, nhi)
        )
        rows.params.append(qp)
        rows.pnames.append("qparams")
        rows.consts["qparams"] = np.array(qvals, np.int32)

    def body(o, k, i):
        v = rows.value(o, k, i)
        if need_rq:  # gemmlowp_ops._requantize from TFLite's fixed output format
            return rq.mbqm(
                v - qp[3], qp[5], qp[6], lambda r: rq.clamp_add(r, qp[4], qp[7], qp[8]).astype(odt)
            )
        return v.astype(odt)

    y = te.compute((O, K, I), body, name="y")
    recipe = ctx.recipe("softmax", prec)
    V = _block(recipe, "k", K, _lanes(ctx, 32), ctx.layer, "elements", True)
    spec = ComputeSpec(
        main="y",
        axes=[
            Axis("o", O, unit="rows"),
            Axis("k", K, vsplit=V, unit="elements"),
            Axis("i", I, unit="columns"),
        ],
        default_order=("o", "i", "k"),
        layer=ctx.layer,
        prologue=rows.prologue,
        prologue_axis="k",
    )
    x_name, out_shape = node.inputs[0], o_i.shape

    def pack(values):
        arr = to_kernel_layout(np.asarray(values[x_name]), layout).astype(np.dtype(xdt))
        out = {"x": arr.reshape(O, K, I)}
        out.update({k: rows.consts[k] for k in rows.pnames})
        return out

    def unpack(arr):
        return from_kernel_layout(np.asarray(arr).reshape(kin), layout).reshape(out_shape)

    signature = {
        "op": "softmax",
        "class": "softmax",
        "x": [[O, K, I], xdt],
        "y": [[O, K, I], odt],
        "block": V,
        "requant": bool(need_rq),
        "format": rows.fmt,
        "beta": beta if rows.fmt == "float" else None,
    }
    built = Built(
        "softmax",
        [x] + rows.params + [y],
        ["x"] + rows.pnames + ["y"],
        spec,
        recipe,
        pack,
        unpack,
        signature,
        (x_name,),
    )
    built.arith = rows.arith
    return built
