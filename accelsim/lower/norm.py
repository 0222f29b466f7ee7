"""Layer normalization as one TVM kernel, in float32 within rounding of `accelsim.ref.fp_ops.
layer_norm` (which computes in float64).

Quantized graphs keep a layer norm in float between a dequantize and a quantize (accelsim's
PTQ, as Wu et al. 2020 leave it), so this kernel is the float one. ONNX Runtime's QDQ models
mark the group with quantized tensors instead (8-bit in, 8-bit out, `accelsim.ref.qdq_ops`'s
DequantizeLinear -> float LayerNormalization -> QuantizeLinear): that kernel dequantizes in
float32 as DequantizeLinear does, normalizes in float64 as the reference does (ORT's own
float kernel accumulates in double), rounds to float32 and quantizes as QuantizeLinear does. Its
integers then equal the reference's unless a float64 result lies within a few float64 ulps of
a float32 rounding boundary (sequential sums here, pairwise in numpy): a chance of order 2^-26
per element.

The tensor is seen as [rows, K, 1], K the product of the normalized trailing axes: the
per-row stages (the sum, the mean, the sum of squared deviations, `1 / sqrt(var + eps)`) are
`prologue` blocks computed under the row loop, as softmax's are (`accelsim.lower.softmax`), and
the output pass `(x - mean) * inv * gamma + beta` is vectorized along K. Two passes over the
row (mean first, then the squared deviations) rather than E[x^2] - E[x]^2, whose cancellation
loses the digits a row with a large mean needs. The square root is one per row: `fsqrt` on
AArch64 and x86, a call to the runtime's `__hexagon_sqrtf` on Hexagon, as LLVM emits it.
"""

from __future__ import annotations

import numpy as np

from accelsim.core import requant as rp
from accelsim.core.qparams import dequantize_array, dtype_range, store_dtype
from accelsim.lower import requant as rq
from accelsim.lower.common import (
    Built,
    Ctx,
    FloatArith,
    NotLowered,
    _block,
    _f32,
    _lanes,
    _need_per_tensor,
    _te,
    _tirx,
    float_types,
)
from accelsim.lower.schedule import Axis, ComputeSpec


def layer_norm(ctx: Ctx) -> Built:
    te, tirx = _te(), _tirx()
    node, g = ctx.node, ctx.graph
    x_i, o_i = ctx.info(0), ctx.out
    gb = [ctx.info(k) if k < len(node.inputs) else None for k in (1, 2)]
    qdq = not (x_i.is_float and o_i.is_float)
    if qdq:
        if g.requant_mode != "float":
            raise NotLowered("an integer layer norm outside an ONNX QDQ graph")
        _need_per_tensor(ctx, x_i, "input")
        _need_per_tensor(ctx, o_i, "output")
        if not (x_i.is_quantized and o_i.is_quantized):
            raise NotLowered(f"a layer norm from {x_i.dtype} to {o_i.dtype}")
        prec, cdt = ctx.precision, "float64"
    else:
        ft = float_types(ctx, x_i, o_i)
        if ft.storage != "float32":
            raise NotLowered(f"a {ft.storage} layer norm (float32 only)")
        prec, cdt = ft.precision, "float32"
    for k, info in zip((1, 2), gb):
        if info is not None and not g.is_constant(node.inputs[k]):
            raise NotLowered(f"input {k} (scale or bias) is not a constant")
    rank = len(x_i.shape)
    axis = node.attr("axis", -1) % rank
    O = int(np.prod(x_i.shape[:axis], dtype=np.int64))
    K = int(np.prod(x_i.shape[axis:], dtype=np.int64))
    eps = float(node.attr("epsilon", 1e-5))
    f32 = "float32"
    xdt = store_dtype(x_i.dtype)
    x = te.placeholder((O, K, 1), xdt, name="x")
    gamma = te.placeholder((K,), f32, name="gamma")
    beta = te.placeholder((K,), f32, name="beta")
    params, pnames, qconsts = [], [], {}
    if qdq:
        # DequantizeLinear's float32 product (`_f32`; the sums it feeds are float64, so no
        # float32 FMA can form); the output quantized as QuantizeLinear does
        fp = te.placeholder((2,), f32, name="fparams")  # x scale, y scale
        qp = te.placeholder((4,), "int32", name="qparams")  # x zp, y zp, y range
        params, pnames = [fp, qp], ["fparams", "qparams"]
        qconsts = {
            "fparams": np.array([rp.scale32(x_i), rp.scale32(o_i)], np.float32),
            "qparams": np.array(
                [rp.zero_point(x_i), rp.zero_point(o_i), *dtype_range(o_i.dtype)], np.int32
            ),
        }

        def xv(o, k, i):
            d = (x[o, k, i].astype("int32") - qp[0]).astype(cdt)
            return _f32(d * fp[0].astype(cdt))
    else:

        def xv(o, k, i):
            return x[o, k, i]

    rk = te.reduce_axis((0, K), "k")
    inv_k = tirx.const(1.0 / K, cdt)
    s1 = te.compute((O, 1), lambda o, i: te.sum(xv(o, rk, i), axis=rk), name="s1")
    mu = te.compute((O, 1), lambda o, i: s1[o, i] * inv_k, name="mu")
    s2 = te.compute(
        (O, 1),
        lambda o, i: te.sum((xv(o, rk, i) - mu[o, i]) * (xv(o, rk, i) - mu[o, i]), axis=rk),
        name="s2",
    )
    rsqrt = _rsqrt64 if qdq else (lambda v: tirx.const(1.0, f32) / tirx.sqrt(v))
    inv = te.compute(
        (O, 1),
        lambda o, i: rsqrt(s2[o, i] * inv_k + tirx.const(eps, cdt)),
        name="inv",
    )

    def normed(o, k, i):
        v = (xv(o, k, i) - mu[o, i]) * inv[o, i] * gamma[k].astype(cdt) + beta[k].astype(cdt)
        if not qdq:
            return v
        v = v.astype(f32) / fp[1]
        return rq.mlas_finish(v, qp[1], qp[2], qp[3]).astype(store_dtype(o_i.dtype))

    y = te.compute((O, K, 1), normed, name="y")
    recipe = ctx.recipe("softmax", prec)  # the row kernels' section
    V = _block(recipe, "k", K, _lanes(ctx, 32), ctx.layer, "elements", True)
    spec = ComputeSpec(
        main="y",
        axes=[
            Axis("o", O, unit="rows"),
            Axis("k", K, vsplit=V, unit="elements"),
            Axis("i", 1, unit="columns"),
        ],
        default_order=("o", "i", "k"),
        layer=ctx.layer,
        prologue=("s1", "mu", "s2", "inv"),
        prologue_axis="k",
    )
    ones, zeros = np.ones(K, np.float32), np.zeros(K, np.float32)
    consts = {
        name: (
            # a quantized scale or bias (ONNX QDQ) as DequantizeLinear gives it to the float op
            dequantize_array(g.constants[node.inputs[k]], info.quant).reshape(K)
            if info is not None and info.quant is not None
            else np.asarray(g.constants[node.inputs[k]], np.float32).reshape(K)
            if info is not None
            else default
        )
        for name, k, info, default in (("gamma", 1, gb[0], ones), ("beta", 2, gb[1], zeros))
    }
    consts.update(qconsts)
    x_name, out_shape = node.inputs[0], o_i.shape

    def pack(values):
        out = {"x": np.asarray(values[x_name]).astype(np.dtype(xdt)).reshape(O, K, 1)}
        out.update(consts)
        return out

    def unpack(arr):
        return np.asarray(arr).reshape(out_shape)

    signature = {
        "op": "layer_norm",
        "class": "layer_norm",
        "x": [[O, K, 1], xdt],
        "qdq": qdq,
        "block": V,
    }
    built = Built(
        "softmax",
        [x, gamma, beta, *params, y],
        ["x", "gamma", "beta", *pnames, "y"],
        spec,
        recipe,
        pack,
        unpack,
        signature,
        (x_name,),
    )
    if not qdq:  # quantized outputs are compared exactly
        # roundings on the chain into one output: the K-term sum, the mean, the K-term sum of
        # squares, the variance, the square root and reciprocal, then four more per element
        built.arith = FloatArith(f32, 2 * K + 8)
    return built


def _rsqrt64(v):
    """1 / sqrt(v) in float64 without a float64 square root or division (the Hexagon
    runtime has neither: LLVM would call libm): the float32 estimate, then two Newton steps
    y (1.5 - v y^2 / 2), each doubling the correct bits (24 -> 48 -> full)."""
    tirx = _tirx()
    f64 = "float64"
    y = (tirx.const(1.0, "float32") / tirx.sqrt(v.astype("float32"))).astype(f64)
    for _ in range(2):
        y = y * (tirx.const(1.5, f64) - tirx.const(0.5, f64) * v * y * y)
    return y
