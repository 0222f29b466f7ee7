"""Integer-only kernels bit-exact with TensorFlow Lite's reference kernels (BUILTIN_REF).

Registered in the "gemmlowp" domain: quantized graphs whose `requant_mode` is "gemmlowp"
run these; ops without a kernel here fall back to the shared "int" kernels (reshape,
flatten, squeeze, transpose).

Each kernel follows the TFLite kernel's Prepare (how the effective multipliers and clamp
bounds are derived, including which products are taken in float32 and which in float64)
and its reference Eval (tensorflow/lite/kernels/internal/reference/...), as of TF 2.21:

- conv2d (incl. depthwise): `PopulateConvolutionQuantizationParams`, per output channel
  double(s_in) * double(s_w[c]) / double(s_out) -> `QuantizeMultiplier`; 8-bit activations
  accumulate in int32 and requantize with the int32 `MultiplyByQuantizedMultiplier`
  (double rounding); int16 activations accumulate in int64 and use the int64 overload
  (multiplier reduced to 16 bits) unless the bias is int32.
- dense (FULLY_CONNECTED): the reference kernel requantizes in *double precision*:
  int32(round(double(acc) * double(s_in) * double(s_w[c]) / double(s_out))); the TFLite
  importer marks such nodes `requant="double"`. Dense nodes from accelsim's own quantizer
  requantize in fixed point like conv2d, keeping the graph integer-only.
- matmul (BATCH_MATMUL): double(float(s_a * s_b)) / double(s_out), int32 (8-bit) or int64
  (int16) accumulator.
- add / sub: add.cc / `PrepareGeneralSubOp`: left_shift 20 (8-bit) or 15 (int16), inputs
  rescaled to twice the larger input scale, three multipliers.
- mul: one multiplier float(s1 * s2 / s_out) (float arithmetic).
- relu / relu6 / clip: activations.cc `QuantizedReluX` (requantize by float(s_in / s_out),
  clamp to zp + roundf(bound / s_out)).
- avg_pool: sum of the raw values of the in-image taps divided by their count, rounded half
  away from zero in integer arithmetic; max_pool: plain max.
- mean: reference_ops::QuantizedMeanOrSum (int32 sum, 1/N folded into the multiplier).
- concat: plain copy when the quantization matches (TFLite's int8/int16 requirement),
  else reference_ops::ConcatenationWithScaling (float32 arithmetic, std::round).
- softmax: 8-bit input = reference_ops::Softmax (gemmlowp fixed-point exp_on_negative_values
  and reciprocal, as the kReference kernel uses); int16 = reference_ops::SoftmaxInt16
  (513-entry LUTs with linear interpolation).
- quantize: float -> int `AffineQuantize`, TfLiteRound(x / float(scale)) in float32;
  int -> int `Requantize`, double(s_in) / double(s_out), int32 arithmetic.
- dequantize: float(double(scale) * (q - zp)).

Beyond what TFLite accepts (graphs from accelsim's own PTQ): unequal input/output
quantization on pooling, pad and softmax is handled by a following requantization (as a
QUANTIZE op would do it); asymmetric 16-bit tensors, whose (q - zp) no longer fits TFLite's
int32 intermediate, lower the add/sub left shift and multiply in int64.

References: TensorFlow Lite kernels (kernel_util.cc, conv.cc, fully_connected.cc, add.cc,
mul.cc, reduce.cc, activations.cc, quantize.cc, dequantize.cc, pad.cc, batch_matmul.cc),
the reference headers (reference/integer_ops/{conv,depthwise_conv,fully_connected,pooling,
add,mul}.h, reference/{softmax,reduce,quantize,requantize,concatenation}.h, common.h,
quantization_util.cc) and gemmlowp's fixedpoint/fixedpoint.h.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from accelsim.core import fixedpoint as fx
from accelsim.core import requant as rq
from accelsim.core.errors import ModelError
from accelsim.core.qparams import DTYPE_BITS, QuantParams, dtype_range
from accelsim.model.graph import TensorInfo
from accelsim.model.ops import activation_bounds, spatial_axes
from accelsim.ref import libm
from accelsim.ref import primitives as P
from accelsim.ref.fp_ops import move
from accelsim.ref.int_ops import quantized_clamp, round_half_away
from accelsim.ref.registry import KernelCall, kernel

INT32_MIN = -(1 << 31)
INT32_MAX = rq.INT32_MAX


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def _err(c: KernelCall, msg: str) -> ModelError:
    return ModelError(f"node '{c.node.name}' ({c.node.op}): {msg}")


def _need_quant(c: KernelCall, info: TensorInfo | None, what: str) -> None:
    if info is None or not info.is_quantized:
        raise _err(c, f"{what} must be a quantized integer tensor for the gemmlowp kernels")


def _per_tensor(c: KernelCall, info: TensorInfo, what: str) -> None:
    _need_quant(c, info, what)
    if info.quant.per_channel and len(set(info.quant.scale)) > 1:
        raise _err(c, f"{what} must be quantized per tensor")


def _mbqm(x, multiplier, shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplier(int32_t x, ...) as int64."""
    return np.asarray(
        fx.multiply_by_quantized_multiplier(rq.wrap_int32(x), multiplier, shift), dtype=np.int64
    )


def _mbqm64(x, multiplier, shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplier(int64_t x, ...) (int16x8 kernels) as int64."""
    return np.asarray(
        fx.multiply_by_quantized_multiplier_int64(np.asarray(x, np.int64), multiplier, shift),
        dtype=np.int64,
    )


def _clamp(c: KernelCall, y: np.ndarray, out: TensorInfo | None = None) -> np.ndarray:
    """Clamp to CalculateActivationRangeQuantized(fused activation, output)."""
    out = out or c.out_info[0]
    lo, hi = activation_bounds(c.node.attrs)
    qmin, qmax = quantized_clamp(out, lo, hi)
    return np.clip(y, qmin, qmax)


def _channel_shape(layout: str, ndim: int) -> tuple[int, ...]:
    ca, _, _ = spatial_axes(layout)
    shape = [1] * ndim
    shape[ca] = -1
    return tuple(shape)


def _weight_scales(c: KernelCall, w: TensorInfo, cout: int) -> np.ndarray:
    """One filter scale (as float32) per output channel."""
    _need_quant(c, w, "weights")
    try:
        return rq.weight_scales(w, cout)
    except rq.RequantError as exc:
        raise _err(c, str(exc)) from None


def _weight_zero_points(w: TensorInfo, ndim: int) -> np.ndarray:
    zp = w.quant.zero_points()
    if w.quant.per_channel:
        return zp.reshape((-1,) + (1,) * (ndim - 1))
    return np.int64(zp[0])


def _requant_acc(acc: np.ndarray, mult, shift, wide: bool) -> np.ndarray:
    return _mbqm64(acc, mult, shift) if wide else _mbqm(acc, mult, shift)


# ---------------------------------------------------------------------------------------
# Convolution and fully connected
# ---------------------------------------------------------------------------------------


@kernel("conv2d", "gemmlowp")
def conv2d(c: KernelCall):
    x_info, w_info, out = c.in_info[0], c.in_info[1], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    layout = c.attr("data_layout", "NCHW")
    w = c.args[1].astype(np.int64) - _weight_zero_points(w_info, 4)
    x = c.args[0].astype(np.int64) - rq.zero_point(x_info)
    acc = P.exact_int_conv2d(x, w, c.node.attrs)
    cshape = _channel_shape(layout, 4)
    if len(c.args) > 2 and c.args[2] is not None:
        acc = acc + c.args[2].astype(np.int64).reshape(cshape)
    cout = w.shape[0]
    _weight_scales(c, w_info, cout)  # checks the weights' quantization axis
    mult, shift = rq.conv_multipliers(x_info, w_info, out, cout)
    wide = rq.is_wide(x_info, w_info, c.in_info[2] if len(c.in_info) > 2 else None)
    y = _requant_acc(acc, mult.reshape(cshape), shift.reshape(cshape), wide) + rq.zero_point(out)
    return [_clamp(c, y)]


@kernel("dense", "gemmlowp")
def dense(c: KernelCall):
    """FULLY_CONNECTED. TFLite's reference kernel (reference/integer_ops/fully_connected.h,
    the overloads that take the float scales, called by fully_connected.cc for kReference
    since TF 2.1x) requantizes in double precision, not in fixed point:
    ``int32(round(double(acc) * (double(s_in) * double(s_w) / double(s_out))))`` with
    ``round`` = half away from zero, per output channel for per-channel weights."""
    x_info, w_info, out = c.in_info[0], c.in_info[1], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    _need_quant(c, w_info, "weights")
    w = c.args[1].astype(np.int64) - _weight_zero_points(w_info, 2)
    x = c.args[0].astype(np.int64) - rq.zero_point(x_info)
    x = x.reshape(-1, w.shape[1])
    acc = P.exact_int_matmul(x, w.T)
    if len(c.args) > 2 and c.args[2] is not None:
        acc = acc + c.args[2].astype(np.int64).reshape(1, -1)
    cout = w.shape[0]
    _weight_scales(c, w_info, cout)  # checks the weights' quantization axis
    if c.attr("requant") == "double":  # set by the TFLite importer
        eff = rq.double_scales(x_info, w_info, out, cout).reshape(1, -1)
        y = round_half_away(acc.astype(np.float64) * eff).astype(np.int64) + rq.zero_point(out)
    else:
        # integer-only, exactly as conv2d (and every generated kernel) requantizes
        mult, shift = rq.conv_multipliers(x_info, w_info, out, cout)
        wide = rq.is_wide(x_info, w_info, c.in_info[2] if len(c.in_info) > 2 else None)
        y = _requant_acc(acc, mult.reshape(1, -1), shift.reshape(1, -1), wide) + rq.zero_point(out)
    return [_clamp(c, y).reshape(out.shape)]


@kernel("matmul", "gemmlowp")
def matmul(c: KernelCall):
    a_info, b_info, out = c.in_info[0], c.in_info[1], c.out_info[0]
    for info, what in ((a_info, "lhs"), (b_info, "rhs"), (out, "output")):
        _per_tensor(c, info, what)
    a = c.args[0].astype(np.int64) - rq.zero_point(a_info)
    b = c.args[1].astype(np.int64) - rq.zero_point(b_info)
    if c.attr("transpose_a", False):
        a = np.swapaxes(a, -1, -2)
    if c.attr("transpose_b", False):
        b = np.swapaxes(b, -1, -2)
    acc = P.exact_int_matmul(a, b)
    # batch_matmul.cc -> GetQuantizedConvolutionMultipler: double(float(s_lhs * s_rhs)) /
    # double(s_out); the int16 kernel accumulates in int64 (int64 MultiplyByQuantized...)
    mult, shift = rq.product_multiplier(a_info, b_info, out)
    wide = DTYPE_BITS[a_info.dtype] > 8 or DTYPE_BITS[b_info.dtype] > 8
    y = _requant_acc(acc, mult, shift, wide) + rq.zero_point(out)
    return [_clamp(c, y)]


# ---------------------------------------------------------------------------------------
# Elementwise
# ---------------------------------------------------------------------------------------


def _add_sub(c: KernelCall, sign: int):
    a_info, b_info, out = c.in_info[0], c.in_info[1], c.out_info[0]
    for info, what in ((a_info, "first input"), (b_info, "second input"), (out, "output")):
        _per_tensor(c, info, what)
    ap = rq.add_params(a_info, b_info, out)
    left_shift, (m1, sh1), (m2, sh2), (mo, sho) = ap.left_shift, ap.input1, ap.input2, ap.output
    x1 = (c.args[0].astype(np.int64) - rq.zero_point(a_info)) << left_shift
    x2 = (c.args[1].astype(np.int64) - rq.zero_point(b_info)) << left_shift
    y1 = _mbqm(x1, m1, sh1)
    y2 = _mbqm(x2, m2, sh2)
    raw = rq.wrap_int32(y1 + y2 if sign > 0 else y1 - y2)
    y = _mbqm(raw, mo, sho) + rq.zero_point(out)
    return [_clamp(c, y)]


@kernel("add", "gemmlowp")
def add(c: KernelCall):
    return _add_sub(c, 1)


@kernel("sub", "gemmlowp")
def sub(c: KernelCall):
    return _add_sub(c, -1)


@kernel("mul", "gemmlowp")
def mul(c: KernelCall):
    a_info, b_info, out = c.in_info[0], c.in_info[1], c.out_info[0]
    for info, what in ((a_info, "first input"), (b_info, "second input"), (out, "output")):
        _per_tensor(c, info, what)
    mult, shift, wide = rq.mul_params(a_info, b_info, out)
    prod = (c.args[0].astype(np.int64) - rq.zero_point(a_info)) * (
        c.args[1].astype(np.int64) - rq.zero_point(b_info)
    )
    y = (_mbqm64(prod, mult, shift) if wide else _mbqm(prod, mult, shift)) + rq.zero_point(out)
    return [_clamp(c, y)]


def _relu_x(c: KernelCall, lo: float, hi: float):
    """activations.cc QuantizedReluX: requantize by float(s_in / s_out), then clamp to
    zp + roundf(bound / s_out)."""
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    mult, shift = rq.relu_multiplier(x_info, out)
    y = rq.zero_point(out) + _mbqm(c.args[0].astype(np.int64) - rq.zero_point(x_info), mult, shift)
    qmin, qmax = quantized_clamp(out, lo, hi)
    return [np.clip(y, qmin, qmax)]


@kernel("relu", "gemmlowp")
def relu(c: KernelCall):
    return _relu_x(c, 0.0, np.inf)


@kernel("relu6", "gemmlowp")
def relu6(c: KernelCall):
    return _relu_x(c, 0.0, 6.0)


@kernel("clip", "gemmlowp")
def clip(c: KernelCall):
    lo, hi = c.attr("min"), c.attr("max")
    return _relu_x(c, -np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))


# ---------------------------------------------------------------------------------------
# Pooling and reductions
# ---------------------------------------------------------------------------------------


def _requantize(c: KernelCall, y: np.ndarray, src: TensorInfo, dst: TensorInfo) -> np.ndarray:
    """Move integer values from `src`'s quantization to `dst`'s as TFLite's QUANTIZE
    (int -> int, `Requantize`) does; the identity when both are the same."""
    needed, mult, shift = rq.rescale_multiplier(src, dst)
    if not needed:
        return y
    lo, hi = dtype_range(dst.dtype)
    return np.clip(_mbqm(y - rq.zero_point(src), mult, shift) + rq.zero_point(dst), lo, hi)


def _div_round_half_away(acc: np.ndarray, n: np.ndarray) -> np.ndarray:
    """acc > 0 ? (acc + n/2) / n : (acc - n/2) / n, C++ integer division (toward zero)."""
    half = n // 2
    num = np.where(acc > 0, acc + half, acc - half)
    q = np.abs(num) // n
    return np.where(num < 0, -q, q)


@kernel("avg_pool", "gemmlowp")
def avg_pool(c: KernelCall):
    """reference_integer_ops::AveragePool: the raw values of the in-image taps are summed
    and divided by their count, rounding half away from zero (TFLite requires equal input
    and output quantization; when they differ, e.g. in graphs from accelsim's own PTQ, the
    average is requantized as a following QUANTIZE op would)."""
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    layout = c.attr("data_layout", "NCHW")
    x = c.args[0].astype(np.int64)
    include_pad = bool(c.attr("count_include_pad", False))
    total = P.pool_windows(x, c.node.attrs, 0).sum(axis=(-1, -2))
    counts = np.rint(P.pool_counts(x.shape, c.node.attrs)).astype(np.int64)
    if include_pad:
        # explicitly padded taps count as real zeros (the zero point); a ceil-mode window's
        # overhang past the padding does not count at all
        padded = np.rint(P.pool_counts_with_pads(x.shape, c.node.attrs)).astype(np.int64)
        total = total + rq.zero_point(x_info) * (padded - counts)
        counts = padded
    y = P.from_nchw(_div_round_half_away(total, counts), layout)
    return [_clamp(c, _requantize(c, y, x_info, out))]


@kernel("max_pool", "gemmlowp")
def max_pool(c: KernelCall):
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    lo, _ = dtype_range(x_info.dtype)
    win = P.pool_windows(c.args[0].astype(np.int64), c.node.attrs, lo)
    y = P.from_nchw(win.max(axis=(-1, -2)), c.attr("data_layout", "NCHW"))
    return [_clamp(c, _requantize(c, y, x_info, out))]


def _mean_impl(c: KernelCall, x: np.ndarray, axes: tuple[int, ...]):
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    axes = tuple(sorted({a % x.ndim for a in axes}))
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    mult, shift = rq.mean_multiplier(x_info, out, n)
    total = rq.wrap_int32(x.astype(np.int64).sum(axis=axes, keepdims=True))
    shifted = rq.wrap_int32(total - rq.zero_point(x_info) * n)
    y = _mbqm(shifted, mult, shift) + rq.zero_point(out)
    lo, hi = dtype_range(out.dtype)
    return [np.clip(y, lo, hi).reshape(out.shape)]


@kernel("mean", "gemmlowp")
def mean(c: KernelCall):
    return _mean_impl(c, c.args[0], tuple(c.attr("axes")))


@kernel("global_avg_pool", "gemmlowp")
def global_avg_pool(c: KernelCall):
    return _mean_impl(c, c.args[0], P.spatial_reduce_axes(c.attr("data_layout", "NCHW")))


# ---------------------------------------------------------------------------------------
# Data movement with requantization
# ---------------------------------------------------------------------------------------


@kernel("concat", "gemmlowp")
def concat(c: KernelCall):
    out = c.out_info[0]
    _per_tensor(c, out, "output")
    so, zo = rq.scale32(out), rq.zero_point(out)
    lo, hi = dtype_range(out.dtype)
    parts = []
    for arr, info in zip(c.args, c.in_info):
        _per_tensor(c, info, "input")
        si, zi = rq.scale32(info), rq.zero_point(info)
        if si == so and zi == zo:
            parts.append(arr.astype(np.int64))
            continue
        # reference_ops::ConcatenationWithScaling (float32 arithmetic, std::round)
        inv = np.float32(1.0) / so
        scale = np.float32(si * inv)
        bias = np.float32(np.float32(-zi) * scale)
        v = arr.astype(np.float32) * scale + bias
        q = round_half_away(v.astype(np.float32)).astype(np.int64) + zo
        parts.append(np.clip(q, lo, hi))
    y = np.concatenate(parts, axis=c.attr("axis"))
    lo_a, hi_a = activation_bounds(c.node.attrs)
    if np.isfinite(lo_a) or np.isfinite(hi_a):
        y = _clamp(c, y)
    return [y]


@kernel("pad", "gemmlowp")
def pad(c: KernelCall):
    out = c.out_info[0]
    _per_tensor(c, out, "output")
    _per_tensor(c, c.in_info[0], "input")
    value = float(c.attr("value", 0.0) or 0.0)
    qv = rq.zero_point(out) + int(round_half_away(np.float64(value) / np.float64(rq.scale32(out))))
    lo, hi = dtype_range(out.dtype)
    x = _requantize(c, c.args[0].astype(np.int64), c.in_info[0], out)
    mode = c.attr("mode", "constant")  # MIRROR_PAD (reflect, symmetric): a copy
    return [P.pad_array(x, c.attr("pads"), mode, int(np.clip(qv, lo, hi)))]


@kernel("quantize", "gemmlowp")
def quantize(c: KernelCall):
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, out, "output")
    lo, hi = dtype_range(out.dtype)
    if x_info.is_float:
        # AffineQuantize: TfLiteRound(val / static_cast<float>(scale)) + zero_point
        x = c.args[0].astype(np.float32)
        q = round_half_away(x / rq.scale32(out)).astype(np.int64) + rq.zero_point(out)
        return [np.clip(q, lo, hi)]
    _per_tensor(c, x_info, "input")
    mult, shift = rq.quantize_multiplier_of(x_info, out)  # reference_ops::Requantize
    y = _mbqm(c.args[0].astype(np.int64) - rq.zero_point(x_info), mult, shift) + rq.zero_point(out)
    return [np.clip(y, lo, hi)]


@kernel("dequantize", "gemmlowp")
def dequantize(c: KernelCall):
    x_info = c.in_info[0]
    x = c.args[0]
    if x_info.is_float:
        return [x.astype(np.float64)]
    _need_quant(c, x_info, "input")
    q = x_info.quant
    if q.per_channel:
        shape = q.broadcast_shape(x.ndim)
        scale = np.asarray(q.scale, dtype=np.float32).astype(np.float64).reshape(shape)
        zp = q.zero_points().reshape(shape)
    else:
        scale, zp = np.float64(rq.scale32(x_info)), rq.zero_point(x_info)
    # reference_ops::Dequantize: static_cast<float>(scale * (val - zero_point)), scale double
    return [(scale * (x.astype(np.int64) - zp)).astype(np.float32)]


# ---------------------------------------------------------------------------------------
# Softmax
# ---------------------------------------------------------------------------------------


def _srdhm(a, b) -> np.ndarray:
    return np.asarray(
        fx.saturating_rounding_doubling_high_mul(rq.wrap_int32(a), rq.wrap_int32(b)), dtype=np.int64
    )


def _rdbpot(x, e) -> np.ndarray:
    return np.asarray(fx.rounding_divide_by_pot(rq.wrap_int32(x), e), dtype=np.int64)


def _sat_shl(x: np.ndarray, e: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0 on int32."""
    thr = (1 << (31 - e)) - 1
    return np.where(x > thr, INT32_MAX, np.where(x < -thr, INT32_MIN, x << e))


def _rescale(x: np.ndarray, src_bits: int, dst_bits: int) -> np.ndarray:
    e = src_bits - dst_bits
    if e > 0:
        return _sat_shl(x, e)
    if e < 0:
        return _rdbpot(x, -e)
    return x


# gemmlowp fixedpoint.h constants (shared with the lowered kernel, accelsim.lower.softmax)
EXP_QUARTER = {
    "constant_term": 1895147668,  # exp(-1/8) in Q0.31
    "one_third": 715827883,
}  # 1/3 in Q0.31
# exp_on_negative_values' barrel shifter: (exponent, exp(-2^exponent) in Q0.31)
EXP_BARREL = (
    (-2, 1672461947),
    (-1, 1302514674),
    (0, 790015084),
    (1, 290630308),
    (2, 39332535),
    (3, 720401),
    (4, 242),
)
RECIPROCAL = {
    "c48_over_17": 1515870810,  # Q2.29
    "c_neg32_over_17": -1010580540,
}  # Q2.29


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    constant_term = EXP_QUARTER["constant_term"]
    constant_1_over_3 = EXP_QUARTER["one_third"]
    x = rq.wrap_int32(a + (1 << 28))  # a + 1/8
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_over_4 = _rdbpot(x4, 2)
    poly = _rdbpot(rq.wrap_int32(_srdhm(rq.wrap_int32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return rq.wrap_int32(constant_term + _srdhm(constant_term, rq.wrap_int32(x + poly)))


def _exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values for FixedPoint<int32, integer_bits>; Q0.31 result."""
    frac = 31 - integer_bits
    one_quarter = 1 << (frac - 2)
    mask = one_quarter - 1
    a_mod = rq.wrap_int32((a & mask) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _rescale(a_mod, integer_bits, 0)
    )
    remainder = rq.wrap_int32(a_mod - a)
    for exponent, multiplier in EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (frac + exponent)
            result = np.where((remainder & bit) != 0, _srdhm(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _rounding_half_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = a + b
    sign = np.where(s >= 0, 1, -1)
    t = s + sign
    q = np.abs(t) // 2  # C++ '/' truncates toward zero
    return np.where(t < 0, -q, q)


def _one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    half_denominator = _rounding_half_sum(a, np.int64(INT32_MAX))
    c48_over_17 = RECIPROCAL["c48_over_17"]
    c_neg32_over_17 = RECIPROCAL["c_neg32_over_17"]
    one_f2 = 1 << 29
    x = rq.wrap_int32(c48_over_17 + _srdhm(half_denominator, c_neg32_over_17))
    for _ in range(3):
        hdx = _srdhm(half_denominator, x)
        one_minus = rq.wrap_int32(one_f2 - hdx)
        x = rq.wrap_int32(x + _rescale(_srdhm(x, one_minus), 4, 2))
    return _rescale(x, 1, 0)  # Rescale<0>(ExactMulByPot<-1>(x))


def _clz32(v: np.ndarray) -> np.ndarray:
    """Count leading zeros of uint32 values (32 for 0); frexp is exact below 2**53."""
    v = np.asarray(v, dtype=np.int64) & 0xFFFFFFFF
    _, e = np.frexp(v.astype(np.float64))
    return np.where(v == 0, 32, 32 - e).astype(np.int64)


SOFTMAX_SCORE_BITS = 5  # kScaledDiffIntegerBits


def softmax_8bit_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input multiplier, left shift, diff_min) of the 8-bit softmax: TFLite's
    PreprocessSoftmaxScaling(beta, input_scale, 5) and -CalculateInputRadius(5, left_shift, 31).
    ValueError when the input scale is too small (a negative left shift)."""
    score_bits = SOFTMAX_SCORE_BITS
    real = min(
        float(np.float32(beta)) * float(np.float32(input_scale)) * float(1 << (31 - score_bits)),
        float((1 << 31) - 1),
    )
    mult, left_shift = fx.quantize_multiplier(float(real))
    if left_shift < 0:
        raise ValueError(f"softmax input scale {input_scale} is too small")
    radius = math.floor(
        1.0 * ((1 << score_bits) - 1) * (1 << (31 - score_bits)) / (1 << left_shift)
    )
    return mult, left_shift, -radius


def softmax_int16_params(beta: float, input_scale: float) -> tuple[int, int]:
    """(multiplier, shift) of the int16 softmax's input scaling onto the exp LUT's range:
    input->params.scale * params->beta (float) / (10.0 / 65535.0) (double)."""
    real = np.float64(np.float32(np.float32(input_scale) * np.float32(beta))) / (10.0 / 65535.0)
    return fx.quantize_multiplier(float(real))


def _softmax_8bit(c: KernelCall, x: np.ndarray, axis: int) -> np.ndarray:
    x_info, out = c.in_info[0], c.out_info[0]
    score_bits, accum_bits = SOFTMAX_SCORE_BITS, 12
    try:
        mult, left_shift, diff_min = softmax_8bit_params(c.attr("beta", 1.0), x_info.quant.scale[0])
    except ValueError as exc:
        raise _err(c, str(exc)) from None
    xi = np.moveaxis(x.astype(np.int64), axis, -1)
    diff = xi - xi.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    # MultiplyByQuantizedMultiplierGreaterThanOne
    rescaled = _srdhm(rq.wrap_int32(np.where(valid, diff, 0) * (1 << left_shift)), mult)
    exps = _exp_on_negative_values(rescaled, score_bits)
    sum_exps = rq.wrap_int32(
        np.where(valid, _rescale(exps, 0, accum_bits), 0).sum(axis=-1, keepdims=True)
    )
    headroom = _clz32(sum_exps)
    num_bits_over_unit = accum_bits - headroom
    shifted_minus_one = rq.wrap_int32(((sum_exps & 0xFFFFFFFF) << headroom) - (1 << 31))
    shifted_scale = _one_over_one_plus_x_for_x_in_0_1(shifted_minus_one)
    out_bits = (
        8 * np.dtype({"int8": np.int8, "uint8": np.uint8, "int16": np.int16}[out.dtype]).itemsize
    )
    exponent = num_bits_over_unit + 31 - out_bits
    prod = _srdhm(shifted_scale, exps)
    # TFLite TFLITE_CHECKs 0 <= exponent <= 31, i.e. for 8-bit outputs a row whose sum of
    # exps exceeds 256 (e.g. > 256 near-equal logits) aborts the reference interpreter.
    # Every such output is below half an output step: |prod| < 2**31 <= 2**(exponent - 1),
    # so the rounding division gives 0, which is what is computed here.
    over = exponent > 31
    e = np.broadcast_to(np.clip(exponent, 0, 31), prod.shape)
    unsat = np.asarray(fx.rounding_divide_by_pot(prod, e), dtype=np.int64)
    unsat = np.where(np.broadcast_to(over, prod.shape), 0, unsat)
    omin, omax = dtype_range(out.dtype)
    y = np.clip(unsat + omin, omin, omax)
    y = np.where(valid, y, omin)
    return np.moveaxis(y, -1, axis)


def _lut_populate_int16(
    fn, input_scale: float, input_zp: int, output_scale: float, output_zp: int, f32: bool = False
) -> np.ndarray:
    """detail::LUTPopulateInt16<FloatT> (common.h): 512 steps + 1, with midpoint bias. FloatT
    is double for softmax's tables and float (`f32`: every operation rounded to float32) for
    LUTPopulate<int16_t> with a float transform (GELU)."""
    r = (lambda v: float(np.float32(v))) if f32 else float
    input_min = r(r(input_scale) * (-32768 - input_zp))
    input_max = r(r(input_scale) * (32767 - input_zp))
    output_min = r(r(output_scale) * (-32768 - output_zp))
    output_max = r(r(output_scale) * (32767 - output_zp))
    nb_steps = 512
    step = r((input_max - input_min) / nb_steps)
    half_step = r(step / 2)
    inv = r(float(32767 - -32768 + 1) / r(output_max - output_min))
    rnd = _round_away

    def at(v: float) -> float:
        return r(fn(r(v)))

    lut = np.zeros(nb_steps + 1, dtype=np.int64)
    for i in range(nb_steps):
        x = r(input_min + r(i * step))
        val = at(x)
        val_mid = at(r(x + half_step))
        val_next = at(r(input_min + r((i + 1) * step)))
        sample_val = rnd(r(val * inv))
        midpoint_interp_val = rnd(r(r(r(val_next * inv) + rnd(r(val * inv))) / 2))
        midpoint_val = rnd(r(val_mid * inv))
        midpoint_err = r(midpoint_interp_val - midpoint_val)
        bias = rnd(r(midpoint_err / 2))
        lut[i] = int(min(max(r(sample_val - bias), -32768.0), 32767.0))
    lut[nb_steps] = int(min(max(rnd(r(at(input_max) * inv)), -32768.0), 32767.0))
    return lut


def _round_away(v: float) -> float:
    return math.copysign(math.floor(abs(v) + 0.5), v) if abs(v) < 2**52 else v


@cache
def softmax_int16_luts() -> tuple[np.ndarray, np.ndarray]:
    rng = 32767 - (-32768)
    exp_lut = _lut_populate_int16(math.exp, 10.0 / rng, 32767, 2.0 / rng, 0)
    recip_lut = _lut_populate_int16(lambda v: 1.0 / (1.0 + v), 1.0 / rng, -32768, 2.0 / rng, 0)
    return exp_lut, recip_lut


def _lut_lookup(value: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """LUTLookup(int16_t, const int16_t*): 9-bit index, 7-bit linear interpolation."""
    index = 256 + (value >> 7)
    offset = value & 0x7F
    base = lut[index]
    slope = lut[index + 1] - lut[index]
    delta = (slope * offset + 64) >> 7
    return ((base + delta + 32768) & 0xFFFF) - 32768  # static_cast<int16_t>


def _softmax_int16(c: KernelCall, x: np.ndarray, axis: int) -> np.ndarray:
    mult, shift = softmax_int16_params(c.attr("beta", 1.0), c.in_info[0].quant.scale[0])
    exp_lut, recip_lut = softmax_int16_luts()
    xi = np.moveaxis(x.astype(np.int64), axis, -1)
    diff = xi - xi.max(axis=-1, keepdims=True)
    scaled = _mbqm(diff, mult, shift)
    sym = np.clip(scaled + 32767, -32768, 32767)
    exps = _lut_lookup(sym, exp_lut)
    sum_exps = rq.wrap_int32(exps.sum(axis=-1, keepdims=True))
    headroom = _clz32(sum_exps)
    shifted = ((sum_exps << (headroom - 1)) + (1 << 13)) >> 14
    sym_sum = np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767)
    recip = _lut_lookup(sym_sum, recip_lut)
    right_shift = 31 - headroom
    rnd = np.int64(1) << (right_shift - 1)
    res = (exps * recip + rnd) >> right_shift
    y = np.clip(res, 0, 32767)
    return np.moveaxis(y, -1, axis)


@kernel("softmax", "gemmlowp")
def softmax(c: KernelCall):
    """8-bit input: reference_ops::Softmax (output in steps of 2**-bits from the dtype's
    minimum, as TFLite fixes it); int16 input: reference_ops::SoftmaxInt16 (output
    scale 1/32768, zero point 0). Only differences x - max(x) enter, so the input zero
    point is free. An output quantized otherwise (graphs from accelsim's own PTQ) is
    requantized from that fixed format, as a following QUANTIZE op would."""
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    axis = c.attr("axis", -1) % c.args[0].ndim
    if x_info.dtype in ("int8", "uint8") and out.dtype in ("int8", "uint8", "int16"):
        y = _softmax_8bit(c, c.args[0], axis)
        lo, _ = dtype_range(out.dtype)
        natural = QuantParams.per_tensor(2.0 ** -DTYPE_BITS[out.dtype], lo)
    elif x_info.dtype == "int16" and out.dtype == "int16":
        y = _softmax_int16(c, c.args[0], axis)
        natural = QuantParams.per_tensor(1.0 / 32768, 0)
    else:
        raise _err(c, f"softmax from {x_info.dtype} to {out.dtype} is not supported")
    src = TensorInfo(out.name, out.shape, out.dtype, natural)
    return [_requantize(c, y, src, out)]


# ---------------------------------------------------------------------------------------
# Activations: 8-bit lookup tables, the int16 sigmoid / tanh, hard-swish
# ---------------------------------------------------------------------------------------

F32 = np.float32


def _f32(v) -> np.ndarray:
    """Round a float64 result to float32: one IEEE float32 operation, correctly rounded."""
    return np.asarray(v, np.float64).astype(F32)


def _sigmoid_f32(x: np.ndarray) -> np.ndarray:
    """`1.0f / (1.0f + std::exp(-x))`, each operation in float32."""
    e = libm.expf(-np.asarray(x, F32))
    return _f32(1.0 / _f32(1.0 + e.astype(np.float64)).astype(np.float64))


def _tanh_f32(x: np.ndarray) -> np.ndarray:
    return libm.tanhf(x)


_SQRT1_2_F32 = float(F32(-math.sqrt(0.5)))
_SQRT_2_OVER_PI_F32 = float(F32(math.sqrt(2.0 / math.pi)))


def _gelu_f32(x: np.ndarray) -> np.ndarray:
    """reference_ops::GeluTransform: 0.5f * x * erfc(x * -M_SQRT1_2), in float32."""
    x64 = x.astype(np.float64)
    t = _f32(x64 * _SQRT1_2_F32).astype(np.float64)
    half = _f32(0.5 * x64).astype(np.float64)
    return _f32(half * libm.erfcf(t).astype(np.float64))


def _gelu_tanh_f32(x: np.ndarray) -> np.ndarray:
    """GeluTransformApproximate: 0.5f * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715f x^3)))."""
    x64 = x.astype(np.float64)
    c = float(F32(0.044715))
    cube = _f32(_f32(_f32(c * x64).astype(np.float64) * x64).astype(np.float64) * x64)
    inner = _f32(x64 + cube.astype(np.float64))
    th = libm.tanhf(_f32(_SQRT_2_OVER_PI_F32 * inner.astype(np.float64)))
    half = _f32(0.5 * x64).astype(np.float64)
    return _f32(half * _f32(1.0 + th.astype(np.float64)).astype(np.float64))


def _hard_sigmoid_f32(alpha: float, beta: float):
    def fn(x: np.ndarray) -> np.ndarray:
        a, b = float(F32(alpha)), float(F32(beta))
        y = _f32(_f32(a * x.astype(np.float64)).astype(np.float64) + b)
        return np.clip(y, F32(0.0), F32(1.0))

    return fn


def lut_8bit(fn, x_info: TensorInfo, out: TensorInfo) -> np.ndarray:
    """LUTPopulate<int8_t / uint8_t> (TFLite's 8-bit lookup tables, float32 arithmetic): the
    output for every input value from the dtype's minimum up."""
    qmin, qmax = dtype_range(x_info.dtype)
    omin, omax = dtype_range(out.dtype)
    vals = np.arange(qmin, qmax + 1, dtype=np.int64)
    deq = _f32(np.float64(rq.scale32(x_info)) * (vals - rq.zero_point(x_info)))
    inv = F32(1.0) / rq.scale32(out)
    with np.errstate(invalid="ignore", over="ignore"):
        rescaled = round_half_away(_f32(fn(deq).astype(np.float64) * np.float64(inv)))
        q = _f32(rescaled + rq.zero_point(out))
    q = np.nan_to_num(q.astype(np.float64), nan=omin, posinf=omax, neginf=omin)
    return np.clip(q, omin, omax).astype(np.int64)


def _lookup_8bit(c: KernelCall, fn) -> list[np.ndarray]:
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    table = lut_8bit(fn, x_info, out)
    qmin, _ = dtype_range(x_info.dtype)
    return [table[c.args[0].astype(np.int64) - qmin]]


def _lookup_int16(c: KernelCall, fn) -> list[np.ndarray]:
    """LUTPopulate<int16_t> + LUTLookup: the table maps raw int16 inputs (the input zero
    point is in the table's range) to outputs with a zero point of 0; an output quantized
    otherwise (accelsim's PTQ) is requantized from that."""
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    if x_info.dtype != "int16" or out.dtype != "int16":
        raise _err(c, f"{c.node.op} from {x_info.dtype} to {out.dtype} is not supported")
    table = _lut_populate_int16(
        fn, x_info.quant.scale[0], rq.zero_point(x_info), out.quant.scale[0], 0, f32=True
    )
    y = _lut_lookup(c.args[0].astype(np.int64), table)
    natural = TensorInfo(
        out.name, out.shape, "int16", QuantParams.per_tensor(out.quant.scale[0], 0)
    )
    return [_requantize(c, y, natural, out)]


# TFLite's sigmoid(i / 24) table in Q0.16 (tensorflow/lite/kernels/internal/common.h,
# sigmoid_table_uint16), which its int16 LOGISTIC and TANH interpolate; tanh(x) is read as
# 2 * sigmoid(2x) - 1. The values are TFLite's own (they are not a plain rounding of the
# function), so they are data here.
SIGMOID_TABLE_Q16 = np.array(
    [
        32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498,
        40149, 40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255,
        46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865,
        52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174,
        56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544, 58800, 59048, 59288,
        59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279, 61441,
        61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886,
        62990, 63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835,
        63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450,
        64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845,
        64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097,
        65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
        65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
        65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425,
        65429, 65433, 65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465,
        65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
        65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508,
        65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516, 65517, 65517, 65518,
        65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524, 65525,
        65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529,
        65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531,
        65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533,
        65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
        65534, 65534, 65535,
    ],
    dtype=np.int64,
)  # fmt: skip


def _checked_log2(x: float) -> tuple[bool, int]:
    """TFLite's CheckedLog2 (float arithmetic): (is a power of two, rounded log2)."""
    inv_ln2 = F32(F32(1.0) / _f32(math.log(2.0)))
    lg = F32(_f32(math.log(float(F32(x)))) * inv_ln2)
    r = F32(round_half_away(lg))
    return abs(float(F32(lg - r))) < 1e-3, int(r)


def int16_sigmoid_tanh_params(input_scale: float, tanh: bool) -> tuple[int, int]:
    """(input multiplier, input left shift) of TFLite's int16 LOGISTIC / TANH (SigmoidPrepare,
    TanhPrepare): a power-of-two input scale 2^-12 (tanh also 2^-11) keeps multiplier 0 (the
    kernel then uses 3 << shift); any other scale is rescaled onto the table's 1/(3*4096)."""
    pot, log2 = _checked_log2(input_scale)
    left = (15 - 3) + log2
    pot = pot and (left in (0, 1) if tanh else left == 0)
    if pot:
        return 0, left
    mult = float(F32(input_scale)) * 4096.0 * 3.0
    left = 0
    while mult <= 32767.0 / 2.0 and left <= 30:
        left += 1
        mult *= 2.0
    return int(mult), left


def _int16_table_input(x: np.ndarray, mult: int, left: int) -> np.ndarray:
    if mult == 0:  # power-of-two case
        mult, left = 3 << left, 0
    rnd = (1 << (left - 1)) if left > 0 else 0
    return (x * mult + rnd) >> left


def _interpolate_sigmoid_table(a: np.ndarray, frac_bits: int, saturated: int) -> np.ndarray:
    """SIGMOID_TABLE_Q16 linearly interpolated at |input| with `frac_bits` fractional bits
    (9 for LOGISTIC, 8 for TANH, which reads it at twice the input); `saturated` past it."""
    uh = a >> frac_bits
    safe = np.minimum(uh, 254)
    ua, ub = SIGMOID_TABLE_Q16[safe], SIGMOID_TABLE_Q16[safe + 1]
    frac = a & ((1 << frac_bits) - 1)
    return np.where(uh >= 255, saturated, (ua << frac_bits) + frac * (ub - ua))


def _int16(v: np.ndarray) -> np.ndarray:
    return (v + 32768) % 65536 - 32768  # static_cast<int16_t>


def int16_logistic(x: np.ndarray, mult: int, left: int) -> np.ndarray:
    """reference_integer_ops::Logistic(int16): output scale 1/32768, zero point 0."""
    v = _int16_table_input(x.astype(np.int64), mult, left)
    res = _interpolate_sigmoid_table(np.abs(v), 9, 0x7FFF << 10)
    res = np.where(v >= 0, res + (1 << 9), (1 << 25) - res + (1 << 9) - 1)
    return _int16(res >> 10)


def int16_tanh(x: np.ndarray, mult: int, left: int) -> np.ndarray:
    """reference_integer_ops::Tanh(int16): output scale 1/32768, zero point 0."""
    v = _int16_table_input(x.astype(np.int64), mult, left)
    res = _interpolate_sigmoid_table(np.abs(v), 8, 0xFFFF << 8)
    res = np.where(v >= 0, res - (1 << 23) + (1 << 7), -res + (1 << 23) + (1 << 7) - 1)
    return _int16(res >> 8)


def _sigmoid_or_tanh(c: KernelCall, tanh: bool):
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    if DTYPE_BITS[x_info.dtype] <= 8:
        return _lookup_8bit(c, _tanh_f32 if tanh else _sigmoid_f32)
    if x_info.dtype != "int16" or out.dtype != "int16":
        raise _err(c, f"{c.node.op} from {x_info.dtype} to {out.dtype} is not supported")
    mult, left = int16_sigmoid_tanh_params(x_info.quant.scale[0], tanh)
    # TFLite requires zero points of 0; an asymmetric input (accelsim's own PTQ) is centred
    # first, in int64
    x = c.args[0].astype(np.int64) - rq.zero_point(x_info)
    y = int16_tanh(x, mult, left) if tanh else int16_logistic(x, mult, left)
    natural = TensorInfo(out.name, out.shape, "int16", QuantParams.per_tensor(1.0 / 32768, 0))
    return [_requantize(c, y, natural, out)]


@kernel("sigmoid", "gemmlowp")
def sigmoid(c: KernelCall):
    """LOGISTIC: 8-bit through LUTPopulate's float table (kReference), int16 through the
    interpolated Q0.16 sigmoid table."""
    return _sigmoid_or_tanh(c, tanh=False)


@kernel("tanh", "gemmlowp")
def tanh(c: KernelCall):
    return _sigmoid_or_tanh(c, tanh=True)


def _need_8bit(c: KernelCall) -> None:
    for info, what in ((c.in_info[0], "input"), (c.out_info[0], "output")):
        if DTYPE_BITS[info.dtype] > 8:
            raise _err(
                c,
                f"{what} is {info.dtype}: TFLite has no integer {c.node.op} wider than 8 bits "
                f"(accelsim's quantizer keeps it in float there)",
            )


@kernel("gelu", "gemmlowp")
def gelu(c: KernelCall):
    """GELU: TFLite's lookup tables of GeluTransform / GeluTransformApproximate (float32):
    LUTPopulate<int8_t> for 8 bits, the interpolated 513-entry LUTPopulate<int16_t> table
    for int16."""
    fn = _gelu_tanh_f32 if c.attr("approximate", "none") == "tanh" else _gelu_f32
    if DTYPE_BITS[c.in_info[0].dtype] <= 8:
        return _lookup_8bit(c, fn)
    return _lookup_int16(c, lambda v: float(fn(np.array([v], F32))[0]))


@kernel("hard_sigmoid", "gemmlowp")
def hard_sigmoid(c: KernelCall):
    """No TFLite operator: accelsim's quantizer runs it as an 8-bit lookup table built the
    way TFLite builds its tables (LUTPopulate, float32)."""
    _need_8bit(c)
    return _lookup_8bit(c, _hard_sigmoid_f32(c.attr("alpha", 0.2), c.attr("beta", 0.5)))


def _downscale_int16_multiplier(m: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    if m >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (m + (1 << 15)) >> 16


def _srdhm16(a: np.ndarray, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    q = ab + nudge
    res = np.where(q >= 0, q >> 15, -((-q) >> 15))  # C++ division by 2^15 truncates
    return np.where((a == b) & (a == -32768), 32767, res)


def _rdbpot16(x: np.ndarray, e: int) -> np.ndarray:
    if e <= 0:
        return x
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > thr)


def _sat16(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -32768, 32767)


@kernel("hard_swish", "gemmlowp")
def hard_swish(c: KernelCall):
    """reference_ops::HardSwish (8-bit, 16-bit fixed point) with HardSwishPrepare's
    multipliers (float arithmetic, reduced to 16 bits)."""
    _need_8bit(c)
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    s_in, s_out = rq.scale32(x_info), rq.scale32(out)
    hires = F32(F32(1.0 / 128.0) * s_in)
    m_out, e_out = fx.quantize_multiplier(float(F32(hires / s_out)))
    m_out16 = _downscale_int16_multiplier(m_out)
    if e_out > 0:
        raise _err(c, "output scale too small for TFLite's hard-swish (exponent > 0)")
    m_rel, e_rel = fx.quantize_multiplier(float(F32(hires / F32(3.0 / 32768.0))))
    m_rel16 = _downscale_int16_multiplier(m_rel)
    v = c.args[0].astype(np.int64) - rq.zero_point(x_info)
    hi = ((v * (1 << 7)) + 32768) % 65536 - 32768  # int16 arithmetic
    pre_out = _srdhm16(hi, m_out16)
    rel = hi
    if e_rel > 0:
        rel = _sat16(rel * (1 << (e_rel - 1)))
    rel = _srdhm16(rel, m_rel16)
    if e_rel > 0:
        rel = _sat16(rel * 2)
    if e_rel < 0:
        rel = _rdbpot16(rel, -e_rel)
    rel = (rel + (1 << 15)) >> 1
    prod = rel * pre_out  # SaturatingDoublingHighMul: truncating division by 2^15
    pre = np.where(prod >= 0, prod >> 15, -((-prod) >> 15))
    pre = np.where((rel == -32768) & (pre_out == -32768), 32767, pre)
    y = _rdbpot16(pre, -e_out) + rq.zero_point(out)
    lo, hi_ = dtype_range(out.dtype)
    return [np.clip(y, lo, hi_)]


# ---------------------------------------------------------------------------------------
# TFLite's layer-norm pieces: SQUARED_DIFFERENCE, RSQRT
# ---------------------------------------------------------------------------------------


@kernel("squared_difference", "gemmlowp")
def squared_difference(c: KernelCall):
    """squared_difference.cc (int8): inputs shifted left by 7 and rescaled to twice the
    larger input scale, the difference squared in int32, rescaled to the output."""
    _need_8bit(c)
    a_info, b_info, out = c.in_info[0], c.in_info[1], c.out_info[0]
    for info, what in ((a_info, "first input"), (b_info, "second input"), (out, "output")):
        _per_tensor(c, info, what)
    s1, s2, so = rq.scale32(a_info), rq.scale32(b_info), rq.scale32(out)
    twice = np.float64(F32(2 * max(s1, s2)))
    m1, e1 = fx.quantize_multiplier(float(np.float64(s1) / twice))
    m2, e2 = fx.quantize_multiplier(float(np.float64(s2) / twice))
    mo, eo = fx.quantize_multiplier(float(twice * twice / np.float64(F32((1 << 14) * so))))
    x1 = (c.args[0].astype(np.int64) - rq.zero_point(a_info)) << 7
    x2 = (c.args[1].astype(np.int64) - rq.zero_point(b_info)) << 7
    d = _mbqm(x1, m1, e1) - _mbqm(x2, m2, e2)
    y = _mbqm(rq.wrap_int32(d * d), mo, eo) + rq.zero_point(out)
    lo, hi = dtype_range(out.dtype)
    return [np.clip(y, lo, hi)]


def _inv_sqrt_multiplier(value: int) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp(value, kReverseShift): (multiplier, left shift) of
    1 / sqrt(value), by five Newton-Raphson steps in gemmlowp fixed point."""
    if value <= 1:
        return INT32_MAX, 0
    shift = 11
    while value >= (1 << 29):
        value //= 4
        shift += 1
    headroom = int(_clz32(np.array([value]))[0]) - 1
    pairs = headroom // 2 - 1
    shift -= pairs
    value <<= 2 * pairs
    x_in = np.int64(value >> 1)  # F3
    half_in = _rdbpot(x_in, 1)
    half_three = (1 << 28) + (1 << 27)
    x = np.int64(1 << 28)  # F3 one
    for _ in range(5):
        x2 = _srdhm(x, x)  # F6
        x3 = _sat_shl(rq.wrap_int32(_srdhm(x2, x)), 6)  # F9 -> Rescale<3>
        t = rq.wrap_int32(_srdhm(half_three, x) - _srdhm(half_in, x3))  # F6
        x = _sat_shl(t, 3)  # Rescale<3>
    x = _srdhm(x, 1518500250)  # * sqrt(2)/2 (F0)
    mult = int(x)
    if shift < 0:
        mult <<= -shift
        shift = 0
    return mult, -shift


@kernel("sqrt", "gemmlowp")
def sqrt(c: KernelCall):
    """SQRT (8 and 16 bit, SqrtEvalQuantized): sqrt of the dequantized value in float32,
    divided by the output scale and truncated toward zero."""
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    deq = _f32(
        np.float64(rq.scale32(x_info)) * (c.args[0].astype(np.int64) - rq.zero_point(x_info))
    )
    if (deq < 0).any():
        raise _err(c, "SQRT of a negative value")
    y = _f32(np.sqrt(deq.astype(np.float64))).astype(np.float64) / np.float64(rq.scale32(out))
    q = np.trunc(_f32(y).astype(np.float64)).astype(np.int64) + rq.zero_point(out)
    lo, hi = dtype_range(out.dtype)
    return [np.clip(q, lo, hi)]


@kernel("rsqrt", "gemmlowp")
def rsqrt(c: KernelCall):
    """RSQRT (int8): 1 / sqrt(q - zp) from GetInvSqrtQuantizedMultiplierExp, scaled by
    1 / (sqrt(s_in) * s_out); q == zp gives the largest output."""
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    if x_info.dtype == "int16":  # LUTPopulate<int16_t> of 1 / sqrt (float)
        if (c.args[0].astype(np.int64) < rq.zero_point(x_info)).any():
            raise _err(c, "RSQRT of a negative value")
        big = float(F32(32767 * float(rq.scale32(out))))
        return _lookup_int16(
            c,
            lambda v: big if v <= 0.0 else float(F32(1.0) / _f32(math.sqrt(v))),
        )
    if x_info.dtype != "int8":
        raise _err(c, f"RSQRT on {x_info.dtype} is not supported (int8, int16)")
    mult, shift = fx.quantize_multiplier(
        float(
            1.0
            / (np.float64(F32(math.sqrt(float(rq.scale32(x_info))))) * np.float64(rq.scale32(out)))
        )
    )
    zp_in, zp_out = rq.zero_point(x_info), rq.zero_point(out)
    lo, hi = dtype_range(out.dtype)
    table = np.empty(256, np.int64)
    for q in range(-128, 128):
        v = q - zp_in
        if v < 0:
            table[q + 128] = lo  # TFLite rejects negative inputs at run time
            continue
        if v == 0:
            table[q + 128] = hi
            continue
        m, s = _inv_sqrt_multiplier(v)
        data = int(_mbqm(1, m, s + 20))
        table[q + 128] = int(np.clip(int(_mbqm(data, mult, shift - 20)) + zp_out, lo, hi))
    x = c.args[0].astype(np.int64)
    if (x < zp_in).any():
        raise _err(
            c, "RSQRT of a negative value (TFLite: 'Rsqrt is only defined for positive values')"
        )
    return [table[x + 128]]


# ---------------------------------------------------------------------------------------
# Data movement: copies, requantized as a following QUANTIZE would when the output's
# parameters differ (never in TFLite files, whose same-scale operators keep them)
# ---------------------------------------------------------------------------------------


def _moved(c: KernelCall):
    out = c.out_info[0]
    x_info = c.in_info[0]
    _per_tensor(c, out, "output")
    _per_tensor(c, x_info, "input")
    y = move(c, c.args).astype(np.int64)
    return [_requantize(c, y, x_info, out)]


for _op in ("slice", "gather", "gather_elements", "tile", "depth_to_space"):
    kernel(_op, "gemmlowp")(_moved)


@kernel("where", "gemmlowp")
def where(c: KernelCall):
    out = c.out_info[0]
    _per_tensor(c, out, "output")
    xs = []
    for a, info in zip(c.args[1:], c.in_info[1:]):
        _per_tensor(c, info, "input")
        xs.append(_requantize(c, a.astype(np.int64), info, out))
    return [np.where(np.asarray(c.args[0]).astype(bool), xs[0], xs[1])]


def _trunc_div(a: np.ndarray, b: int) -> np.ndarray:
    """C++ integer division (toward zero)."""
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def _bilinear_axis(out_size: int, in_size: int, mode: str, scale: float | None):
    """ComputeInterpolationValues (integer, 10 fractional bits): (scaled, lower, upper).
    ONNX coordinate rules (graphs from accelsim's own PTQ; TFLite has none of them): the
    float32 source coordinate, clamped into [0, in - 1] as ONNX Runtime clamps it, rounded to
    10 fractional bits, then the same integer interpolation."""
    if not mode.startswith("tflite_"):
        c = P.resize_source_coords(out_size, in_size, mode, scale).astype(np.float64)
        scaled = np.rint(np.clip(c, 0.0, in_size - 1) * (1 << 10)).astype(np.int64)
        lower = scaled >> 10
        return scaled, lower, np.minimum(lower + 1, in_size - 1)
    align = mode == "tflite_align_corners" and out_size > 1
    if align:
        scale_10 = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale_10 = ((1 << 10) * in_size + out_size // 2) // out_size
    v = np.arange(out_size, dtype=np.int64)
    if mode == "tflite_half_pixel":
        scaled = v * scale_10 + scale_10 // 2 - (1 << 9)
    else:
        scaled = v * scale_10
    lower = np.maximum(_trunc_div(scaled, 1 << 10), 0)
    upper = np.minimum(_trunc_div(scaled + (1 << 10) - 1, 1 << 10), in_size - 1)
    return scaled, lower, upper


def bilinear_tables(attrs, in_hw, out_hw) -> tuple[np.ndarray, np.ndarray]:
    """Per axis (rows, columns) a (3, out) table: the Q10 weight of the upper neighbour, the
    lower and the upper source index, as `resize` below interpolates (the generated kernels
    take them as arguments)."""
    mode = str(attrs.get("coordinate_transformation_mode"))
    scales = attrs.get("scales") or (None, None)
    out = []
    for o, i, s in zip(out_hw, in_hw, scales):
        v, lo, hi = _bilinear_axis(o, i, mode, s)
        out.append(np.stack([v - (1 << 10) * lo, lo, hi]))
    return out[0], out[1]


@kernel("resize", "gemmlowp")
def resize(c: KernelCall):
    """RESIZE_NEAREST_NEIGHBOR: a copy; RESIZE_BILINEAR (8 and 16 bit): reference_ops'
    integer interpolation with 10 fractional bits per axis, rounded half away from zero (with
    ONNX's coordinate rules for graphs from accelsim's PTQ, see _bilinear_axis)."""
    if c.attr("mode", "nearest") == "nearest":
        return _moved(c)
    x_info, out = c.in_info[0], c.out_info[0]
    _per_tensor(c, x_info, "input")
    _per_tensor(c, out, "output")
    mode = str(c.attr("coordinate_transformation_mode"))
    layout = c.attr("data_layout", "NCHW")
    x = P.to_nchw(c.args[0].astype(np.int64), layout)
    (oh, ow), (ih, iw) = c.attr("size"), x.shape[2:]
    scales = c.attr("scales") or (None, None)
    yv, y0, y1 = _bilinear_axis(oh, ih, mode, scales[0])
    xv, x0, x1 = _bilinear_axis(ow, iw, mode, scales[1])
    one = 1 << 10
    dy = (yv - one * y0)[:, None]
    dx = (xv - one * x0)[None, :]
    acc = (
        x[:, :, y0][:, :, :, x0] * (one - dy) * (one - dx)
        + x[:, :, y1][:, :, :, x0] * dy * (one - dx)
        + x[:, :, y0][:, :, :, x1] * (one - dy) * dx
        + x[:, :, y1][:, :, :, x1] * dy * dx
    )
    rnd = np.where(acc > 0, 1 << 19, -(1 << 19))
    y = P.from_nchw(_trunc_div(acc + rnd, 1 << 20), layout)
    return [_requantize(c, y, x_info, out)]
