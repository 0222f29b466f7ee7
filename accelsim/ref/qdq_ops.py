"""Quantized kernels with ONNX QDQ semantics, as ONNX Runtime's CPU kernels compute them.

Registered in the "float" domain (graphs with `requant_mode="float"`, which the ONNX importer
produces). The reference is ONNX Runtime's x86-64 MLAS code (the CPU execution provider):

- QuantizeLinear (`MlasQuantizeLinear`): `x / scale` in float32, clamped to
  `[qmin - zp, qmax - zp]`, rounded half to even, plus the zero point.
- DequantizeLinear: `float(q - zp) * scale` in float32.
- Convolution / Gemm / MatMul (QLinearConv, QGemm, QLinearMatMul): exact integer accumulation
  of zero-point-subtracted operands (int32 in ORT; `primitives.exact_int_*` here), plus the
  int32 bias, then `MlasRequantizeOutput`: `float(acc) * multiplier` in float32 with
  `multiplier = float(x_scale) * float(w_scale[c]) / float(y_scale)` computed in float32 in that
  order, clamped, rounded half to even (cvtps2dq), plus the output zero point.
- Add (QLinearAdd, `MlasQLinearAddKernelAvx2`): float32 ratios `a_scale / c_scale` and
  `b_scale / c_scale`, a float32 constant part `zc - (ra * za + rb * zb)`, then per element
  `fma(a, ra, fma(b, rb, constant))` on the raw integers, rounded half to even, saturated.
- Mul (QLinearMul, `MlasQLinearMulKernel` SSE2): integer product of the zero-point-subtracted
  operands, `float(prod) * (a_scale * b_scale / c_scale) + zc` in float32, rounded, saturated.
- AveragePool (QLinearAveragePool): dequantize to float32, sum each window in float32 in row
  order, divide by the element count, then `nearbyint(y / y_scale + zp)`. A window covering the
  whole unpadded image runs as QLinearGlobalAveragePool.
- GlobalAveragePool (QLinearGlobalAveragePool): integer sum minus `zp * N`, requantized with
  `x_scale / (y_scale * N)` (float32) by `MlasRequantizeOutput`.
- Concat (QLinearConcat): inputs whose parameters differ from the output's go through a
  DequantizeLinear -> QuantizeLinear lookup table.
- Softmax (QLinearSoftmax): a uint32 exponent lookup table, uint32 row sums,
  `(exp * uint32(1 / y_scale) + sum / 2) / sum + zp` in integer arithmetic.
- MaxPool, Pad (all modes), Reshape, Transpose, Slice, Gather, GatherElements, Tile,
  DepthToSpace, nearest Resize: exact on the integers.
- Everything else (Sub, ReduceMean, LayerNormalization, Sigmoid, Tanh, HardSigmoid,
  HardSwish, Gelu, Erf, Div, Where, linear Resize, ..., and add / mul / pooling /
  softmax on 16-bit tensors, for which ORT has no integer kernels) runs as ORT runs an unfused
  QDQ group: DequantizeLinear -> float operator -> QuantizeLinear. (16-bit convolutions and
  matmuls still accumulate exactly in integers; ORT accumulates those in float32.)

int8 activations are computed as ORT's int8 kernels compute them (what ORT runs when it fuses
int8 QDQ groups: on ARM, or on x86 with the session option "session.qdqisint8allowed" = "1").
On x86 ORT's default optimizer fuses int8 groups only partly (it rewrites single-consumer
int8 Q/DQ pairs as uint8 and runs groups whose types then disagree as DequantizeLinear ->
float operator -> QuantizeLinear); those layers accumulate in float32 and can round
differently by one step at ties.
"""

from __future__ import annotations

import numpy as np

from accelsim.core.errors import ModelError
from accelsim.core.qparams import dequantize_array, dtype_range, quantize_array, scale_zp
from accelsim.model.graph import TensorInfo
from accelsim.model.ops import activation_bounds, spatial_axes
from accelsim.ref import primitives as P
from accelsim.ref.fp_ops import move
from accelsim.ref.registry import KernelCall, find_kernel, kernel

F32 = np.float32
F64 = np.float64


# ---------------------------------------------------------------------------------------------
# Quantization arithmetic
# ---------------------------------------------------------------------------------------------


def requantize(acc: np.ndarray, multiplier: np.ndarray, out: TensorInfo) -> np.ndarray:
    """`MlasRequantizeOutput`: float32(acc) * multiplier (float32), clamp, round half to even,
    + zero point (per-tensor output parameters)."""
    zp = int(out.quant.zero_point[0])
    qmin, qmax = dtype_range(out.dtype)
    f = np.asarray(acc).astype(F32) * np.asarray(multiplier, F32)
    f = np.minimum(np.maximum(f, F32(qmin - zp)), F32(qmax - zp))
    return np.rint(f).astype(np.int64) + zp


def _deq(a: np.ndarray, info: TensorInfo | None) -> np.ndarray:
    if info is None or info.is_float:
        return np.asarray(a, F32)
    return dequantize_array(a, info.quant)


def _act_clamp(c: KernelCall, y: np.ndarray, out: TensorInfo) -> np.ndarray:
    """A fused activation (act_min / act_max) on a quantized output: its bounds quantized."""
    return np.clip(y, *output_range(out, c.node.attrs))


def _per_tensor(info: TensorInfo) -> tuple[float, int]:
    q = info.quant
    if q is None:
        return 1.0, 0
    if q.axis is not None and len(q.scale) != 1:
        raise ModelError(
            f"tensor '{info.name}': per-axis parameters are not supported by this operator"
        )
    return q.scale[0], q.zero_point[0]


def _is8(info: TensorInfo | None) -> bool:
    return (
        info is not None
        and info.dtype in ("uint8", "int8")
        and info.quant is not None
        and (info.quant.axis is None or len(info.quant.scale) == 1)
    )


def _vals(x: np.ndarray, info: TensorInfo) -> tuple[np.ndarray, int]:
    """int64 values and the (per-tensor) zero point of an 8-bit tensor."""
    return np.asarray(x).astype(np.int64), int(info.quant.zero_point[0])


def _fma(a: np.ndarray, b, c) -> np.ndarray:
    """float32 fused multiply-add: the product of an 8-bit integer and a float32 is exact in
    float64, so one float64 add then one rounding to float32 is the fused result."""
    return (np.asarray(a, F64) * F64(b) + np.asarray(c, F64)).astype(F32)


def _finish(c: KernelCall, acc: np.ndarray, in_scale: np.ndarray) -> np.ndarray:
    """Requantize an integer accumulator whose real value is `acc * in_scale`."""
    out = c.out_info[0]
    if out.is_float:
        return acc.astype(F64) * in_scale.astype(F64)
    if out.quant is None:  # ConvInteger / MatMulInteger: the int32 accumulator itself
        return acc
    ys = F32(_per_tensor(out)[0])
    y = requantize(acc, in_scale.astype(F32) / ys, out)
    return _act_clamp(c, y, out)


def mac_in_scales(x: TensorInfo, w: TensorInfo, cout: int) -> np.ndarray:
    """`float(x_scale) * float(w_scale[c])` per output channel, in float32."""
    ws, _ = scale_zp(w.quant, 1)
    return F32(_per_tensor(x)[0]) * np.broadcast_to(ws.ravel(), (cout,)).astype(F32)


def mac_multipliers(x: TensorInfo, w: TensorInfo, out: TensorInfo, cout: int) -> np.ndarray:
    """The float32 multiplier per output channel of a convolution or dense layer as `_finish`
    applies it, `float(x_scale) * float(w_scale[c]) / float(y_scale)` in float32 in that
    order (the generated kernels take these values)."""
    return mac_in_scales(x, w, cout) / F32(_per_tensor(out)[0])


def product_multiplier(a: TensorInfo, b: TensorInfo, out: TensorInfo) -> np.float32:
    """`matmul`'s float32 multiplier for per-tensor operands: `(a_scale * b_scale) / y_scale`
    in float32, as `_finish` applies it."""
    return (F32(_per_tensor(a)[0]) * F32(_per_tensor(b)[0])) / F32(_per_tensor(out)[0])


def output_range(out: TensorInfo, attrs) -> tuple[int, int]:
    """The integers a requantized output is clamped to: its type's range, narrowed by a fused
    activation's bounds quantized by QuantizeLinear (`_act_clamp`). Clamping to integer bounds
    before or after rounding gives the same integers."""
    lo, hi = dtype_range(out.dtype)
    a, b = activation_bounds(attrs)
    if np.isfinite(a):
        lo = max(lo, int(quantize_array(np.array(a, F32), out.quant, out.dtype)))
    if np.isfinite(b):
        hi = min(hi, int(quantize_array(np.array(b, F32), out.quant, out.dtype)))
    return lo, hi


# ---------------------------------------------------------------------------------------------
# Quantize / dequantize
# ---------------------------------------------------------------------------------------------


@kernel("quantize", "float")
def quantize(c: KernelCall):
    xi, out = c.in_info[0], c.out_info[0]
    x = c.args[0] if xi.is_float else _deq(c.args[0], xi)  # int -> int: DQ then Q
    return [quantize_array(x, out.quant, out.dtype)]


@kernel("dequantize", "float")
def dequantize(c: KernelCall):
    return [dequantize_array(c.args[0], c.in_info[0].quant, c.out_info[0].dtype)]


# ---------------------------------------------------------------------------------------------
# Convolution, dense, matmul
# ---------------------------------------------------------------------------------------------


def _centered(a: np.ndarray, info: TensorInfo | None) -> np.ndarray:
    _, z = scale_zp(info.quant if info is not None else None, a.ndim)
    return a.astype(np.int64) - z


def _bias(c: KernelCall) -> np.ndarray | None:
    if len(c.args) > 2 and c.args[2] is not None:
        return _centered(np.asarray(c.args[2]), c.in_info[2])
    return None


@kernel("conv2d", "float")
def conv2d(c: KernelCall):
    xi, wi = c.in_info[0], c.in_info[1]
    layout = c.attr("data_layout", "NCHW")
    ca = spatial_axes(layout)[0]
    if xi.quant is not None and xi.quant.axis is not None and len(xi.quant.scale) > 1:
        raise ModelError(
            f"node '{c.node.name}': per-channel input quantization of a "
            f"convolution is not supported"
        )
    acc = P.exact_int_conv2d(_centered(c.args[0], xi), _centered(c.args[1], wi), c.node.attrs)
    shape = [1, 1, 1, 1]
    shape[ca] = -1
    b = _bias(c)
    if b is not None:
        acc = acc + b.reshape(shape)
    in_scale = mac_in_scales(xi, wi, c.args[1].shape[0]).reshape(shape)
    return [_finish(c, acc, in_scale)]


@kernel("dense", "float")
def dense(c: KernelCall):
    xi, wi = c.in_info[0], c.in_info[1]
    x, w = _centered(c.args[0], xi), _centered(c.args[1], wi)
    if x.shape[-1] != w.shape[1]:
        x = x.reshape(-1, w.shape[1])
    acc = P.exact_int_matmul(x, w.T)
    b = _bias(c)
    if b is not None:
        acc = acc + b
    if c.out_info[0].quant is None and not c.out_info[0].is_float:
        in_scale = np.ones(1, F32)  # int32 accumulator output: scales do not matter
    else:
        in_scale = mac_in_scales(xi, wi, w.shape[0])
    y = _finish(c, acc, in_scale)
    return [y.reshape(c.out_info[0].shape)]


@kernel("matmul", "float")
def matmul(c: KernelCall):
    ai, bi = c.in_info[0], c.in_info[1]
    a, b = _centered(c.args[0], ai), _centered(c.args[1], bi)
    sa, _ = scale_zp(ai.quant, a.ndim)
    sb, _ = scale_zp(bi.quant, b.ndim)
    if c.attr("transpose_a", False):
        a, sa = np.swapaxes(a, -1, -2), np.swapaxes(sa, -1, -2)
    if c.attr("transpose_b", False):
        b, sb = np.swapaxes(b, -1, -2), np.swapaxes(sb, -1, -2)
    if sa.shape[-1] != 1 or sb.shape[-2] != 1:
        raise ModelError(
            f"node '{c.node.name}': quantization parameters that vary along the "
            f"reduction axis are not supported"
        )
    acc = P.exact_int_matmul(a, b)
    return [_finish(c, acc, sa.astype(F32) * sb.astype(F32))]


# ---------------------------------------------------------------------------------------------
# Elementwise
# ---------------------------------------------------------------------------------------------


def scalar_operand(a_shape, b_shape, out_shape) -> str | None:
    """Which operand ORT's broadcast loop hands to the kernel as a scalar: a size-1 operand, or
    one broadcast along the innermost non-trivial output axis."""
    if int(np.prod(a_shape)) == 1 and int(np.prod(out_shape)) > 1:
        return "a"
    if int(np.prod(b_shape)) == 1 and int(np.prod(out_shape)) > 1:
        return "b"
    nd = len(out_shape)
    ap = (1,) * (nd - len(a_shape)) + tuple(a_shape)
    bp = (1,) * (nd - len(b_shape)) + tuple(b_shape)
    for ax in reversed(range(nd)):
        if out_shape[ax] > 1:
            if ap[ax] == 1 and bp[ax] > 1:
                return "a"
            if bp[ax] == 1 and ap[ax] > 1:
                return "b"
            return None
    return None


def has_integer_kernel(node, ai: TensorInfo, bi: TensorInfo, out: TensorInfo) -> bool:
    """ORT runs an add / mul as QLinearAdd / QLinearMul: 8-bit per-tensor operands and output
    of one type, and no fused activation beyond what the output's integer range already clamps
    (ORT drops a Relu / Clip whose bounds the QuantizeLinear after it implies, and so does our
    export; any other activation stays DequantizeLinear -> float -> QuantizeLinear)."""
    return (
        _is8(ai)
        and _is8(bi)
        and _is8(out)
        and len({ai.dtype, bi.dtype, out.dtype}) == 1
        and output_range(out, node.attrs) == dtype_range(out.dtype)
    )


def add_params(ai: TensorInfo, bi: TensorInfo, out: TensorInfo) -> tuple[F32, F32, F32]:
    """QLinearAdd's float32 constants: the ratios `a_scale / c_scale`, `b_scale / c_scale` and
    the constant part `zc - (ra * za + rb * zb)`."""
    za, zb = int(ai.quant.zero_point[0]), int(bi.quant.zero_point[0])
    zc = int(out.quant.zero_point[0])
    sa, sb, sc = F32(ai.quant.scale[0]), F32(bi.quant.scale[0]), F32(out.quant.scale[0])
    ra, rb = F32(sa / sc), F32(sb / sc)
    fixed = F32(F32(zc) - F32(F32(ra * F32(za)) + F32(rb * F32(zb))))
    return ra, rb, fixed


def mul_ratio(ai: TensorInfo, bi: TensorInfo, out: TensorInfo) -> F32:
    """QLinearMul's float32 `a_scale * b_scale / c_scale`."""
    return F32(F32(F32(ai.quant.scale[0]) * F32(bi.quant.scale[0])) / F32(out.quant.scale[0]))


@kernel("add", "float")
def add(c: KernelCall):
    ai, bi, out = c.in_info[0], c.in_info[1], c.out_info[0]
    if not has_integer_kernel(c.node, ai, bi, out):
        return _fallback(c)
    a, _ = _vals(c.args[0], ai)
    b, _ = _vals(c.args[1], bi)
    ra, rb, fixed = add_params(ai, bi, out)
    out_shape = out.shape
    which = scalar_operand(a.shape, b.shape, out_shape)
    A = np.broadcast_to(a, out_shape).astype(F32)
    B = np.broadcast_to(b, out_shape).astype(F32)
    if which == "a":
        fixed_a = F32(fixed + (A * ra).astype(F32))
        r = _fma(B, rb, fixed_a)
    elif which == "b":
        fixed_b = F32(fixed + (B * rb).astype(F32))
        r = _fma(A, ra, fixed_b)
    else:
        r = _fma(A, ra, _fma(B, rb, fixed))
    y = np.clip(np.rint(r).astype(np.int64), *dtype_range(out.dtype))
    return [y]


@kernel("mul", "float")
def mul(c: KernelCall):
    ai, bi, out = c.in_info[0], c.in_info[1], c.out_info[0]
    if not has_integer_kernel(c.node, ai, bi, out):
        return _fallback(c)
    a, za = _vals(c.args[0], ai)
    b, zb = _vals(c.args[1], bi)
    zc = int(out.quant.zero_point[0])
    ratio = mul_ratio(ai, bi, out)
    prod = (a - za) * (b - zb)
    r = F32(prod.astype(F32) * ratio) + F32(zc)
    y = np.clip(np.rint(r.astype(F32)).astype(np.int64), *dtype_range(out.dtype))
    return [np.broadcast_to(y, out.shape)]


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------


def global_pool_scale(xs: float, ys: float, n: int) -> np.float32:
    """QLinearGlobalAveragePool's multiplier `x_scale / (y_scale * n)` in float32."""
    return F32(F32(xs) / F32(F32(ys) * F32(n)))


def is_8bit_pool(xi: TensorInfo, out: TensorInfo) -> bool:
    """QLinearGlobalAveragePool runs (else DequantizeLinear -> float -> QuantizeLinear)."""
    return _is8(xi) and _is8(out) and xi.dtype == out.dtype


def _global_pool_u8(
    x_u8: np.ndarray, zx: int, xs: float, zy: int, ys: float, n_img: int, out: TensorInfo, axes
) -> np.ndarray:
    acc = x_u8.sum(axis=axes) - zx * n_img
    scale = global_pool_scale(xs, ys, n_img)
    f = acc.astype(F32) * scale
    lo, hi = dtype_range(out.dtype)
    f = np.minimum(np.maximum(f, F32(lo - zy)), F32(hi - zy))
    return np.rint(f).astype(np.int64) + zy


@kernel("global_avg_pool", "float")
def global_avg_pool(c: KernelCall):
    xi, out = c.in_info[0], c.out_info[0]
    if not is_8bit_pool(xi, out):
        return _fallback(c)
    layout = c.attr("data_layout", "NCHW")
    axes = P.spatial_reduce_axes(layout)
    x, zx = _vals(c.args[0], xi)
    zy = int(out.quant.zero_point[0])
    n_img = x.shape[axes[0]] * x.shape[axes[1]]
    y = _global_pool_u8(x, zx, xi.quant.scale[0], zy, out.quant.scale[0], n_img, out, axes)
    return [y.reshape(out.shape)]


@kernel("avg_pool", "float")
def avg_pool(c: KernelCall):
    xi, out = c.in_info[0], c.out_info[0]
    if (
        not (_is8(xi) and _is8(out))
        or xi.dtype != out.dtype
        or any(k in c.node.attrs for k in ("act_min", "act_max"))
    ):
        return _fallback(c)
    layout = c.attr("data_layout", "NCHW")
    _, ha, wa = spatial_axes(layout)
    x, zx = _vals(c.args[0], xi)
    zy = int(out.quant.zero_point[0])
    kh, kw = c.attr("kernel")
    pads = tuple(c.attr("pads", (0, 0, 0, 0)))
    if (kh, kw) == (x.shape[ha], x.shape[wa]) and not any(pads):
        y = _global_pool_u8(
            x, zx, xi.quant.scale[0], zy, out.quant.scale[0], kh * kw, out, (ha, wa)
        )
        return [y.reshape(out.shape)]
    xf = (F32(xi.quant.scale[0]) * (x - zx).astype(F32)).astype(F32)
    win = P.pool_windows(xf, c.node.attrs, F32(0.0))  # N, C, OH, OW, kh, kw (NCHW)
    acc = np.zeros(win.shape[:4], F32)
    for i in range(kh):
        for j in range(kw):
            acc = (acc + win[..., i, j]).astype(F32)
    if c.attr("count_include_pad", False):
        cnt = P.pool_counts_with_pads(c.args[0].shape, c.node.attrs).astype(F32)
    else:
        cnt = P.pool_counts(c.args[0].shape, c.node.attrs).astype(F32)
    yv = (acc / cnt).astype(F32)
    v = (yv / F32(out.quant.scale[0])).astype(F32) + F32(zy)
    y = np.clip(np.rint(v.astype(F32)).astype(np.int64), *dtype_range(out.dtype))
    return [P.from_nchw(y, layout)]


@kernel("max_pool", "float")
def max_pool(c: KernelCall):
    xi, out = c.in_info[0], c.out_info[0]
    lo, _ = dtype_range(xi.dtype)
    win = P.pool_windows(c.args[0].astype(np.int64), c.node.attrs, lo)
    y = P.from_nchw(win.max(axis=(-1, -2)), c.attr("data_layout", "NCHW"))
    if not (xi.quant == out.quant and xi.dtype == out.dtype):
        y = quantize_array(_deq(y, xi), out.quant, out.dtype).astype(np.int64)
    return [_act_clamp(c, y, out)]


# ---------------------------------------------------------------------------------------------
# Activations, data movement, softmax
# ---------------------------------------------------------------------------------------------


def _clamp_float(c: KernelCall, lo: float | None, hi: float | None):
    x = _deq(c.args[0], c.in_info[0])
    y = np.clip(x, F32(-np.inf if lo is None else lo), F32(np.inf if hi is None else hi))
    return [quantize_array(y.astype(F32), c.out_info[0].quant, c.out_info[0].dtype)]


@kernel("relu", "float")
def relu(c: KernelCall):
    return _clamp_float(c, 0.0, None)


@kernel("relu6", "float")
def relu6(c: KernelCall):
    return _clamp_float(c, 0.0, 6.0)


@kernel("clip", "float")
def clip(c: KernelCall):
    return _clamp_float(c, c.attr("min"), c.attr("max"))


@kernel("pad", "float")
def pad(c: KernelCall):
    xi, out = c.in_info[0], c.out_info[0]
    x = c.args[0]
    if not (xi.quant == out.quant and xi.dtype == out.dtype):
        x = quantize_array(_deq(x, xi), out.quant, out.dtype)
    value = quantize_array(np.array(c.attr("value", 0.0), F32), out.quant, out.dtype)
    return [P.pad_array(x, c.attr("pads"), c.attr("mode", "constant"), value.item())]


def requantize_table(info: TensorInfo, out: TensorInfo) -> np.ndarray:
    """QLinearConcat's DequantizeLinear -> QuantizeLinear lookup table of an 8-bit input, by
    value from the type's minimum up (int32; the generated concat kernels take it)."""
    lo, hi = dtype_range(info.dtype)
    values = np.arange(lo, hi + 1, dtype=np.int64)
    return quantize_array(_deq(values, info), out.quant, out.dtype).astype(np.int32)


@kernel("concat", "float")
def concat(c: KernelCall):
    out = c.out_info[0]
    parts = []
    for a, info in zip(c.args, c.in_info):
        if info.quant == out.quant and info.dtype == out.dtype:
            parts.append(np.asarray(a))
        else:  # QLinearConcat's lookup table: DequantizeLinear -> QuantizeLinear
            parts.append(quantize_array(_deq(a, info), out.quant, out.dtype))
    return [np.concatenate(parts, axis=c.attr("axis"))]


def softmax_table(x_scale: float, d: int) -> np.ndarray:
    """QLinearSoftmax's uint32 table: lrint(q * exp((i - 255) * x_scale)), i = 0..255, with
    q = min(UINT32_MAX / d, 2^23 - 1) so that a row's sum fits in 32 bits."""
    q = min(float(0xFFFFFFFF) / d, float(0x7FFFFF))
    i = np.arange(256, dtype=F64)
    return np.rint(q * np.exp((i - 255.0) * float(F32(x_scale)))).astype(np.int64)


def has_integer_softmax(xi: TensorInfo, out: TensorInfo, beta: float) -> bool:
    """ORT runs QLinearSoftmax (8-bit, same type in and out, beta 1); float otherwise."""
    return _is8(xi) and _is8(out) and xi.dtype == out.dtype and beta == 1.0


@kernel("softmax", "float")
def softmax(c: KernelCall):
    """QLinearSoftmax (uint8 and int8): uint32 exponentials from the table, aligned so the row
    maximum reads entry 255, summed in uint32; y = (e * floor(1 / y_scale) + sum / 2) / sum
    in integer arithmetic, plus the zero point."""
    xi, out = c.in_info[0], c.out_info[0]
    if not has_integer_softmax(xi, out, c.attr("beta", 1.0)):
        return _fallback(c)
    axis = c.attr("axis", -1)
    x, _ = _vals(c.args[0], xi)
    zy = int(out.quant.zero_point[0])
    x = np.moveaxis(x, axis, -1)
    table = softmax_table(xi.quant.scale[0], x.shape[-1])
    vt = table[x - x.max(axis=-1, keepdims=True) + 255]
    vsum = vt.sum(axis=-1, keepdims=True) & 0xFFFFFFFF
    y_scale = int(F32(1.0) / F32(out.quant.scale[0]))  # narrow_cast<uint32_t>: truncation
    q = (((vt * y_scale) + (vsum >> 1)) & 0xFFFFFFFF) // np.maximum(vsum, 1) + zy
    if out.dtype == "uint8":
        y = np.minimum(q, 255)
    else:  # ORT's int8 kernel: `vq > 255 ? 255 : vq` cast to int8 (so 128 wraps to -128)
        y = np.where(q > 255, -1, (q + 128) % 256 - 128)
    return [np.moveaxis(y, -1, axis)]


# ---------------------------------------------------------------------------------------------
# DequantizeLinear -> float operator -> QuantizeLinear
# ---------------------------------------------------------------------------------------------


def _fallback(c: KernelCall):
    """Run the float kernel on dequantized inputs and quantize its outputs (float32)."""
    fn = find_kernel(c.node.op, "fp")
    args = [None if a is None else _deq(a, i) for a, i in zip(c.args, c.in_info)]
    f_in = [None if i is None else TensorInfo(i.name, i.shape, "float32") for i in c.in_info]
    f_out = [TensorInfo(o.name, o.shape, "float32") for o in c.out_info]
    res = fn(KernelCall(c.node, args, f_in, f_out, c.graph))
    outs = []
    for r, o in zip(res, c.out_info):
        r = np.asarray(r).astype(F32)
        outs.append(
            r
            if o.is_float
            else quantize_array(r, o.quant, o.dtype)
            if o.quant is not None
            else np.rint(r)
        )
    return outs


for _op in (
    "sub",
    "mean",
    "layer_norm",
    "batch_norm",
    "gelu",
    "sigmoid",
    "tanh",
    "hard_sigmoid",
    "hard_swish",
    "erf",
    "neg",
    "rsqrt",
    "div",
    "squared_difference",
    "sqrt",
    "pow",
    "where",
):
    kernel(_op, "float")(_fallback)


def _moved(c: KernelCall):
    """Data movement on the integers (ORT drops the DequantizeLinear / QuantizeLinear pair
    around these); DequantizeLinear -> QuantizeLinear when the output's parameters differ."""
    xi, out = c.in_info[0], c.out_info[0]
    y = move(c, c.args)
    if not (xi.quant == out.quant and xi.dtype == out.dtype):
        y = quantize_array(_deq(y, xi), out.quant, out.dtype)
    return [y]


for _op in ("slice", "gather", "gather_elements", "tile", "depth_to_space"):
    kernel(_op, "float")(_moved)


@kernel("resize", "float")
def resize(c: KernelCall):
    """Nearest: a copy of integers. Linear: DequantizeLinear -> float Resize ->
    QuantizeLinear."""
    if c.attr("mode", "nearest") == "nearest":
        return _moved(c)
    return _fallback(c)
