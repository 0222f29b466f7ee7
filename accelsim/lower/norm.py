"""Layer normalization as one TVM kernel, in float32 within rounding of `accelsim.ref.fp_ops.
layer_norm` (which computes in float64).

Quantized graphs keep a layer norm in float between a dequantize and a quantize (accelsim's
PTQ, as Wu et al. 2020 leave it; ONNX Runtime's QDQ models alike), so this kernel is the float
one. The tensor is seen as [rows, K, 1], K the product of the normalized trailing axes: the
per-row stages (the sum, the mean, the sum of squared deviations, `1 / sqrt(var + eps)`) are
`prologue` blocks computed under the row loop, as softmax's are (`accelsim.lower.softmax`), and
the output pass `(x - mean) * inv * gamma + beta` is vectorized along K. Two passes over the
row (mean first, then the squared deviations) rather than E[x^2] - E[x]^2, whose cancellation
loses the digits a row with a large mean needs. The square root is one per row: `fsqrt` on
AArch64 and x86, a call to the runtime's `__hexagon_sqrtf` on Hexagon, as LLVM emits it.
"""

from __future__ import annotations

import numpy as np

from accelsim.lower.common import (
    Built,
    Ctx,
    FloatArith,
    NotLowered,
    _block,
    _lanes,
    _store_dtype,
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
    if not (x_i.is_float and o_i.is_float):
        raise NotLowered("an integer layer norm")
    ft = float_types(ctx, x_i, o_i)
    if ft.storage != "float32":
        raise NotLowered(f"a {ft.storage} layer norm (float32 only)")
    for k, info in zip((1, 2), gb):
        if info is not None and not g.is_constant(node.inputs[k]):
            raise NotLowered(f"input {k} (scale or bias) is not a constant")
    rank = len(x_i.shape)
    axis = node.attr("axis", -1) % rank
    O = int(np.prod(x_i.shape[:axis], dtype=np.int64))
    K = int(np.prod(x_i.shape[axis:], dtype=np.int64))
    eps = float(node.attr("epsilon", 1e-5))
    f32 = "float32"
    x = te.placeholder((O, K, 1), f32, name="x")
    gamma = te.placeholder((K,), f32, name="gamma")
    beta = te.placeholder((K,), f32, name="beta")
    rk = te.reduce_axis((0, K), "k")
    inv_k = tirx.const(1.0 / K, f32)
    s1 = te.compute((O, 1), lambda o, i: te.sum(x[o, rk, i], axis=rk), name="s1")
    mu = te.compute((O, 1), lambda o, i: s1[o, i] * inv_k, name="mu")
    s2 = te.compute(
        (O, 1),
        lambda o, i: te.sum((x[o, rk, i] - mu[o, i]) * (x[o, rk, i] - mu[o, i]), axis=rk),
        name="s2",
    )
    inv = te.compute(
        (O, 1),
        lambda o, i: tirx.const(1.0, f32) / tirx.sqrt(s2[o, i] * inv_k + tirx.const(eps, f32)),
        name="inv",
    )
    y = te.compute(
        (O, K, 1),
        lambda o, k, i: (x[o, k, i] - mu[o, i]) * inv[o, i] * gamma[k] + beta[k],
        name="y",
    )
    recipe = ctx.recipe("softmax", ft.precision)  # the row kernels' section
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
            np.asarray(g.constants[node.inputs[k]], np.float32).reshape(K)
            if info is not None
            else default
        )
        for name, k, info, default in (("gamma", 1, gb[0], ones), ("beta", 2, gb[1], zeros))
    }
    x_name, out_shape = node.inputs[0], o_i.shape

    def pack(values):
        out = {"x": np.asarray(values[x_name], np.float32).reshape(O, K, 1)}
        out.update(consts)
        return out

    def unpack(arr):
        return np.asarray(arr).reshape(out_shape)

    signature = {
        "op": "layer_norm",
        "class": "layer_norm",
        "x": [[O, K, 1], _store_dtype(x_i.dtype)],
        "block": V,
    }
    built = Built(
        "softmax",
        [x, gamma, beta, y],
        ["x", "gamma", "beta", "y"],
        spec,
        recipe,
        pack,
        unpack,
        signature,
        (x_name,),
    )
    # roundings on the chain into one output: the K-term sum, the mean, the K-term sum of
    # squares, the variance, the square root and reciprocal, then four more per element
    built.arith = FloatArith(f32, 2 * K + 8)
    return built
